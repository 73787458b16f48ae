using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Transport.Memory.Internal;

/// <summary>One end of an in-memory connection: the protocol reads <see cref="InputPipe"/> and writes <see cref="OutputPipe"/>.</summary>
internal sealed class MemoryConnection : TransportConnection
{
    private readonly MemoryConnectionPair _pair;

    public MemoryConnection(MemoryConnectionPair pair, TransportListenOptions limits, ILogger logger)
        : base(logger)
    {
        _pair = pair;
        InputPipe = new Pipe(new PipeOptions(
            readerScheduler: PipeScheduler.ThreadPool,
            writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: limits.MaxReadBufferSize,
            resumeWriterThreshold: limits.MaxReadBufferSize / 2,
            useSynchronizationContext: false));
        OutputPipe = new Pipe(new PipeOptions(
            readerScheduler: PipeScheduler.Inline,
            writerScheduler: PipeScheduler.ThreadPool,
            pauseWriterThreshold: limits.MaxWriteBufferSize,
            resumeWriterThreshold: limits.MaxWriteBufferSize / 2,
            useSynchronizationContext: false));
        Transport = CreateDuplexPipe(InputPipe.Reader, OutputPipe.Writer);
    }

    public Pipe InputPipe { get; }

    public Pipe OutputPipe { get; }

    /// <summary>The pump that carries this end's output to the peer's input.</summary>
    public Task OutgoingPump { get; set; } = Task.CompletedTask;

    public ConnectionAbortedException? AbortReason { get; set; }

    /// <summary>Called by the pump into this end when the peer's side has ended.</summary>
    public void SignalConnectionClosed() => OnConnectionClosed();

    public override void Abort(ConnectionAbortedException? abortReason)
    {
        MarkAborted();
        _pair.Abort(this, AbortReasonOrDefault(abortReason));
    }

    protected override async ValueTask CloseTransportAsync()
    {
        InputPipe.Reader.Complete();
        OutputPipe.Writer.Complete();
        await OutgoingPump.ConfigureAwait(false);
    }
}
