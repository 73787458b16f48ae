using System.IO.Pipelines;

namespace Transport.Framing.Benchmarks;

/// <summary>Two pipe ends as one <see cref="IDuplexPipe"/>, for connections over in-memory pipes.</summary>
internal sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
{
    public PipeReader Input { get; } = input;

    public PipeWriter Output { get; } = output;
}
