using Microsoft.Extensions.Logging;

namespace Transport.Sockets.Internal;

/// <summary>A closing connection waiting for its peer's FIN, with the deadline after which it is aborted.</summary>
internal interface IDrainWaiter
{
    /// <summary>The <see cref="TimeProvider.GetTimestamp"/> after which <see cref="OnDrainDeadline"/> is due.</summary>
    long DrainDeadline { get; }

    /// <summary>True once the wait is over by itself: the sweep drops the entry without calling it.</summary>
    bool IsDrained { get; }

    /// <summary>The deadline passed: abort. May complete the wait inline, and so remove the entry during the sweep.</summary>
    void OnDrainDeadline();
}

/// <summary>
/// One timer for the drain deadlines of every closing socket of a transport, instead of a timer per closing socket
/// (<c>Task.WaitAsync(timeout)</c>): a closing connection adds itself, the sweep aborts the ones whose deadline has
/// passed. Deadlines are met to within one sweep period. The timer runs only while something waits.
/// </summary>
/// <remarks>
/// The sweep swaps the waiting list for an empty one under the lock and walks the old one outside it: an abort may
/// run the connection's close inline, which removes or adds entries (in the new list) while the walk goes on, so the
/// walk never sees the list it walks change and reaches every entry. Entries not yet due go back into the new list.
/// </remarks>
internal sealed class DrainDeadlines : IDisposable
{
    private static readonly TimeSpan MinPeriod = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan MaxPeriod = TimeSpan.FromSeconds(1);

    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TimeSpan _period;
    private readonly object _lock = new();
    private List<IDrainWaiter> _waiting = [];
    private List<IDrainWaiter> _spare = [];
    private ITimer? _timer;
    private bool _timerRunning;
    private bool _disposed;
    private int _sweeping;

    public DrainDeadlines(TimeProvider time, TimeSpan timeout, ILogger logger)
    {
        _time = time;
        _logger = logger;
        Timeout = timeout;
        // A quarter of the timeout: an abort comes at most 25 % late, and a 5 s timeout costs one tick a second.
        _period = TimeSpan.FromTicks(Math.Clamp(timeout.Ticks / 4, MinPeriod.Ticks, MaxPeriod.Ticks));
    }

    /// <summary>How long a closing connection may wait for its peer.</summary>
    public TimeSpan Timeout { get; }

    /// <summary>Entries waiting (for tests).</summary>
    internal int Count
    {
        get
        {
            lock (_lock)
            {
                return _waiting.Count;
            }
        }
    }

    /// <summary>The deadline for a wait that starts now.</summary>
    public long DeadlineFromNow() => _time.GetTimestamp() + (long)(Timeout.TotalSeconds * _time.TimestampFrequency);

    public void Add(IDrainWaiter waiter)
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _waiting.Add(waiter);
            if (!_timerRunning)
            {
                _timer ??= _time.CreateTimer(static state => ((DrainDeadlines)state!).Sweep(), this, System.Threading.Timeout.InfiniteTimeSpan, System.Threading.Timeout.InfiniteTimeSpan);
                _timer.Change(_period, _period);
                _timerRunning = true;
            }
        }
    }

    /// <summary>Forgets a waiter whose wait is over. A waiter in the list being swept is skipped there by <see cref="IDrainWaiter.IsDrained"/>.</summary>
    public void Remove(IDrainWaiter waiter)
    {
        lock (_lock)
        {
            int index = _waiting.IndexOf(waiter);
            if (index >= 0)
            {
                // Order does not matter (every sweep walks all): move the last into the gap instead of shifting.
                int last = _waiting.Count - 1;
                _waiting[index] = _waiting[last];
                _waiting.RemoveAt(last);
            }
        }
    }

    /// <summary>Aborts every waiter whose deadline has passed. Runs on the timer; public for tests.</summary>
    internal void Sweep()
    {
        if (Interlocked.Exchange(ref _sweeping, 1) != 0)
        {
            // The previous sweep is still walking; it owns the spare list.
            return;
        }

        try
        {
            List<IDrainWaiter> walking;
            lock (_lock)
            {
                walking = _waiting;
                _waiting = _spare;
                _spare = null!;
            }

            long now = _time.GetTimestamp();
            foreach (IDrainWaiter waiter in walking)
            {
                if (waiter.IsDrained)
                {
                    continue;
                }

                if (now - waiter.DrainDeadline >= 0)
                {
                    Expire(waiter);
                }
                else
                {
                    lock (_lock)
                    {
                        _waiting.Add(waiter);
                    }
                }
            }

            walking.Clear();
            lock (_lock)
            {
                _spare = walking;
                if (_waiting.Count == 0 && _timerRunning && !_disposed)
                {
                    _timer!.Change(System.Threading.Timeout.InfiniteTimeSpan, System.Threading.Timeout.InfiniteTimeSpan);
                    _timerRunning = false;
                }
            }
        }
        catch (Exception ex)
        {
            // A timer callback must not throw.
            SocketsLog.DrainSweepFailed(_logger, ex);
            lock (_lock)
            {
                _spare ??= [];
            }
        }
        finally
        {
            Volatile.Write(ref _sweeping, 0);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _timerRunning = false;
            _timer?.Dispose();
        }
    }

    private void Expire(IDrainWaiter waiter)
    {
        try
        {
            waiter.OnDrainDeadline();
        }
        catch (Exception ex)
        {
            // One failing abort must not keep the others from theirs.
            SocketsLog.DrainSweepFailed(_logger, ex);
        }
    }
}
