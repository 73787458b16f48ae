namespace Transport.Sockets.Internal;

/// <summary>
/// Send operations shared by all socket connections of the process: a connection holds one only while it
/// sends, so an idle connection costs no send operation (about 350 bytes and a finalizable object each).
/// </summary>
internal static class SocketSenderPool
{
    // Enough for every connection that can be sending at one moment on a large box; beyond it they are disposed.
    private static readonly int MaxPooled = Math.Max(64, Environment.ProcessorCount * 16);

    private static readonly object Lock = new();
    private static readonly Stack<SocketAwaitableEventArgs> Free = new();

    public static SocketAwaitableEventArgs Rent()
    {
        lock (Lock)
        {
            if (Free.TryPop(out SocketAwaitableEventArgs? sender))
            {
                return sender;
            }
        }

        return new SocketAwaitableEventArgs();
    }

    /// <summary>Takes back a sender whose operation has completed.</summary>
    public static void Return(SocketAwaitableEventArgs sender)
    {
        // A pooled sender must not keep a connection's buffers reachable.
        sender.ReleaseBuffers();
        lock (Lock)
        {
            if (Free.Count < MaxPooled)
            {
                Free.Push(sender);
                return;
            }
        }

        sender.Dispose();
    }
}
