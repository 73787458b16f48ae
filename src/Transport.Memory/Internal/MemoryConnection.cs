using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;

namespace Transport.Memory.Internal;

/// <summary>One end of an in-memory connection: the protocol reads <see cref="InputPipe"/> and writes <see cref="OutputPipe"/>.</summary>
internal sealed class MemoryConnection : TransportConnection
{
    private readonly MemoryConnectionPair _pair;
    private readonly CancellationTokenSource _closed = new();
    private int _closedFired;
    private int _disposed;

    public MemoryConnection(MemoryConnectionPair pair, TransportListenOptions limits)
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
        Transport = new DuplexPipe(InputPipe.Reader, OutputPipe.Writer);
        ConnectionClosed = _closed.Token;
    }

    public Pipe InputPipe { get; }

    public Pipe OutputPipe { get; }

    /// <summary>The pump that carries this end's output to the peer's input.</summary>
    public Task OutgoingPump { get; set; } = Task.CompletedTask;

    public ConnectionAbortedException? AbortReason { get; set; }

    public override void Abort(ConnectionAbortedException abortReason) => _pair.Abort(this, abortReason);

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        InputPipe.Reader.Complete();
        OutputPipe.Writer.Complete();
        await OutgoingPump.ConfigureAwait(false);
        FireConnectionClosed();
        _closed.Dispose();
        DisposeCloseRequest();
        await base.DisposeAsync().ConfigureAwait(false);
    }

    public void FireConnectionClosed()
    {
        if (Interlocked.Exchange(ref _closedFired, 1) != 0)
        {
            return;
        }

        ThreadPool.UnsafeQueueUserWorkItem(static state =>
        {
            try
            {
                state.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Disposed already: nobody is listening.
            }
        }, _closed, preferLocal: false);
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
