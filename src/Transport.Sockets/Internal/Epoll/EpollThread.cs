using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

namespace Transport.Sockets.Internal.Epoll;

/// <summary>
/// One of the transport's I/O threads: an epoll set and the thread that waits on it and runs what its sockets' events
/// complete (the connection's receive or send, and under inline scheduling the protocol) on that thread, with no hop to
/// the thread pool.
/// </summary>
/// <remarks>
/// A socket is known to the set by a token (slot index and generation), not by a reference: an event the kernel queued
/// before a socket left the set (a descriptor shared with a forked child outlives our close) finds an empty slot or
/// another generation and is ignored.
/// </remarks>
internal sealed unsafe class EpollThread
{
    private const int MaxEvents = 256;

    // The wake event's token: no slot has this index.
    private const ulong WakeToken = ulong.MaxValue;

    [ThreadStatic]
    private static EpollThread? t_current;

    private readonly int _epoll;
    private readonly int _wakeEvent;
    private readonly ConcurrentQueue<(Action<object?> Callback, object? State)> _posted = new();
    // 1 while a wake is signalled and not yet taken: one write(2) however many items are posted meanwhile.
    private int _wakePending;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private EpollSocket?[] _slots = new EpollSocket?[64];
    private readonly Stack<int> _free = new();
    private int _used;
    private uint _generation;

    public EpollThread(int index, ILogger logger)
    {
        _logger = logger;
        _epoll = EpollNative.CreateEpoll();
        _wakeEvent = EpollNative.CreateWakeEvent(_epoll, WakeToken);
        var thread = new Thread(Run, maxStackSize: 0)
        {
            IsBackground = true,
            Name = ".NET Transport epoll " + index.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        thread.UnsafeStart();
    }

    /// <summary>
    /// Runs <paramref name="callback"/> on this thread: at once when called on it, else queued, and the thread woken.
    /// An exception from the callback is logged, and the thread goes on.
    /// </summary>
    public void Run(Action<object?> callback, object? state)
    {
        if (t_current == this)
        {
            Invoke(callback, state);
            return;
        }

        _posted.Enqueue((callback, state));
        if (Interlocked.Exchange(ref _wakePending, 1) == 0)
        {
            EpollNative.Signal(_wakeEvent);
        }
    }

    private void RunPosted()
    {
        EpollNative.ResetWake(_wakeEvent);
        // Cleared before the queue is read: an item posted from here on signals again, so none is left behind.
        Volatile.Write(ref _wakePending, 0);
        while (_posted.TryDequeue(out (Action<object?> Callback, object? State) item))
        {
            Invoke(item.Callback, item.State);
        }
    }

    private void Invoke(Action<object?> callback, object? state)
    {
        try
        {
            callback(state);
        }
        catch (Exception ex)
        {
            LogFailure(ex, 0);
        }
    }

    /// <summary>Adds the socket to the set; its events then arrive on this thread.</summary>
    public SocketError Register(EpollSocket socket)
    {
        ulong token;
        lock (_lock)
        {
            int index;
            if (_free.Count > 0)
            {
                index = _free.Pop();
            }
            else
            {
                if (_used == _slots.Length)
                {
                    var grown = new EpollSocket?[_slots.Length * 2];
                    _slots.CopyTo(grown, 0);
                    Volatile.Write(ref _slots, grown);
                }

                index = _used++;
            }

            token = ((ulong)++_generation << 32) | (uint)index;
            socket.Token = token;
            Volatile.Write(ref _slots[index], socket);
        }

        SocketError error;
        try
        {
            error = EpollNative.Register(_epoll, socket.Handle, token);
        }
        catch (ObjectDisposedException)
        {
            error = SocketError.OperationAborted;
        }

        if (error != SocketError.Success)
        {
            Release(token);
        }

        return error;
    }

    /// <summary>
    /// Frees the socket's slot; its descriptor leaves the set when it is closed (no call here: an event that still comes
    /// finds the slot empty or another generation in it).
    /// </summary>
    public void Unregister(EpollSocket socket) => Release(socket.Token);

    private void Release(ulong token)
    {
        int index = (int)(uint)token;
        lock (_lock)
        {
            if (_slots[index] is { } current && current.Token == token)
            {
                _slots[index] = null;
                _free.Push(index);
            }
        }
    }

    /// <summary>
    /// Logs a failure of this thread's loop. A logging provider is code we did not write: if it throws here, nothing is
    /// left to tell, and an exception escaping this thread would end the process, so it is dropped.
    /// </summary>
    private void LogFailure(Exception? callbackError, int waitErrno)
    {
        try
        {
            if (callbackError is not null)
            {
                SocketsLog.IoThreadCallbackFailed(_logger, callbackError);
            }
            else
            {
                SocketsLog.IoThreadWaitFailed(_logger, waitErrno);
            }
        }
#pragma warning disable CA1031 // The one place a failure cannot be reported: the reporter failed.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    private void Run()
    {
        int size = EpollNative.EventSize;
        int dataOffset = EpollNative.DataOffset;
        byte* events = stackalloc byte[MaxEvents * size];
        t_current = this;
        while (true)
        {
            int n = EpollNative.Wait(_epoll, events, MaxEvents);
            if (n < 0)
            {
                // Not expected for a valid set (EINTR is 0); log and keep serving rather than lose every socket on it.
                LogFailure(null, -n);
                Thread.Sleep(10);
                continue;
            }

            for (int i = 0; i < n; i++)
            {
                byte* ev = events + (i * size);
                uint flags = Unsafe.ReadUnaligned<uint>(ev);
                ulong token = Unsafe.ReadUnaligned<ulong>(ev + dataOffset);
                if (token == WakeToken)
                {
                    RunPosted();
                    continue;
                }

                int index = (int)(uint)token;

                // The table as of now (it may have grown since the last event, with this socket in the new one only).
                EpollSocket?[] slots = Volatile.Read(ref _slots);
                EpollSocket? socket = (uint)index < (uint)slots.Length ? Volatile.Read(ref slots[index]) : null;
                if (socket is null || socket.Token != token)
                {
                    continue;
                }

                try
                {
                    socket.OnEvents(flags);
                }
                catch (Exception ex)
                {
                    // What runs here is the connection's loop and, inline, the protocol: neither should throw to us, and
                    // if one does the thread must go on serving the others.
                    LogFailure(ex, 0);
                }
            }
        }
    }
}
