using System.Net.Sockets;

namespace Transport.Internal;

/// <summary>
/// How a loop that must not end on a fault (accepting connections, receiving datagrams) retries and reports it. The
/// first failed attempt starts an episode and waits <see cref="InitialDelay"/>; each further failure waits twice as
/// long, up to <see cref="MaxDelay"/>, so a lasting fault costs one attempt a second and recovery comes within a second.
/// The episode ends once attempts have succeeded for <see cref="QuietPeriod"/> after the last failure; then the
/// owner's callback reports how many attempts failed and for how long. A server that hovers at its descriptor limit
/// (each freed descriptor lets one accept through, the next fails) so stays in one episode instead of logging a line
/// per accept.
/// </summary>
/// <remarks>
/// <see cref="Fail"/> and <see cref="Succeed"/> are called by the one loop that owns the instance; the end of an
/// episode is noticed on a timer. <see cref="Succeed"/> costs two field reads, so it can follow every accept.
/// </remarks>
internal sealed class RetryBackoff : IDisposable
{
    private readonly TimeProvider _time;
    private readonly Action<long, TimeSpan> _recovered;
    private readonly TimeSpan _initialDelay;
    private readonly TimeSpan _maxDelay;
    private readonly TimeSpan _quietPeriod;
    private readonly Lock _lock = new();
    private ITimer? _timer;
    private TimeSpan _nextDelay;
    private long _failures;
    private long _startedAt;
    private long _lastFailureAt;
    private bool _inEpisode;
    private bool _succeededSinceFailure;
    private bool _disposed;

    /// <param name="time">The clock of the delays and of the quiet period.</param>
    /// <param name="recovered">Called, on a timer thread, when an episode ends: the failed attempts, and the time from the first to the last.</param>
    public RetryBackoff(TimeProvider time, Action<long, TimeSpan> recovered)
        : this(time, recovered, InitialDelay, MaxDelay, QuietPeriod)
    {
    }

    public RetryBackoff(TimeProvider time, Action<long, TimeSpan> recovered, TimeSpan initialDelay, TimeSpan maxDelay, TimeSpan quietPeriod)
    {
        _time = time;
        _recovered = recovered;
        _initialDelay = initialDelay;
        _maxDelay = maxDelay;
        _quietPeriod = quietPeriod;
        _nextDelay = initialDelay;
    }

    /// <summary>The wait after the first failed attempt: short, so a brief shortage costs almost nothing.</summary>
    public static TimeSpan InitialDelay { get; } = TimeSpan.FromMilliseconds(10);

    /// <summary>The longest wait between attempts.</summary>
    public static TimeSpan MaxDelay { get; } = TimeSpan.FromSeconds(1);

    /// <summary>How long attempts must succeed after the last failure before the episode is over.</summary>
    public static TimeSpan QuietPeriod { get; } = TimeSpan.FromSeconds(2);

    /// <summary>Failed attempts in the current episode; 0 outside one.</summary>
    public long Failures
    {
        get
        {
            lock (_lock)
            {
                return _failures;
            }
        }
    }

    /// <summary>Whether the last attempt failed (no success since): the owner is not doing its work right now.</summary>
    public bool Failing => Volatile.Read(ref _inEpisode) && !Volatile.Read(ref _succeededSinceFailure);

    /// <summary>Records a failed attempt and returns how long to wait before the next one.</summary>
    /// <param name="episodeStarted">Whether this failure starts an episode: the owner logs it then, and only then.</param>
    public TimeSpan Fail(out bool episodeStarted)
    {
        lock (_lock)
        {
            long now = _time.GetTimestamp();
            episodeStarted = !_inEpisode;
            if (episodeStarted)
            {
                _startedAt = now;
                _failures = 0;
            }

            if (episodeStarted || _succeededSinceFailure)
            {
                // Something got through since the last failure: the shortage is easing, so look again soon.
                _nextDelay = _initialDelay;
            }

            _failures++;
            _lastFailureAt = now;
            Volatile.Write(ref _succeededSinceFailure, false);
            Volatile.Write(ref _inEpisode, true);
            TimeSpan delay = _nextDelay;
            _nextDelay = delay >= _maxDelay / 2 ? _maxDelay : delay * 2;
            return delay;
        }
    }

    /// <summary>Records a successful attempt; the episode, if any, ends after <see cref="QuietPeriod"/> without a failure.</summary>
    public void Succeed()
    {
        if (!Volatile.Read(ref _inEpisode) || Volatile.Read(ref _succeededSinceFailure))
        {
            return;
        }

        lock (_lock)
        {
            if (!_inEpisode || _succeededSinceFailure || _disposed)
            {
                return;
            }

            Volatile.Write(ref _succeededSinceFailure, true);
            _timer ??= _time.CreateTimer(static state => ((RetryBackoff)state!).OnQuiet(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _timer.Change(RemainingQuiet(), Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>
    /// Waits <paramref name="delay"/> on the clock. Returns <see langword="false"/> as soon as <paramref name="stop"/>
    /// completes (the owner is shutting the loop down, which must not wait out a delay); throws
    /// <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    public async Task<bool> WaitAsync(TimeSpan delay, Task stop, CancellationToken cancellationToken)
    {
        if (stop.IsCompleted)
        {
            return false;
        }

        using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task elapsed = Task.Delay(delay, _time, timer.Token);
        Task first = await Task.WhenAny(elapsed, stop).ConfigureAwait(false);
        await timer.CancelAsync().ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        return first == elapsed;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _timer?.Dispose();
        }
    }

    /// <summary>
    /// A name for an error with few possible values, for an <c>error.type</c> tag and the log: the
    /// <see cref="SocketError"/> for a socket error (.NET reports EMFILE and ENFILE both as <c>TooManyOpenSockets</c>,
    /// ENOBUFS as <c>NoBufferSpaceAvailable</c>), otherwise the exception's type.
    /// </summary>
    public static string ErrorType(Exception exception) => exception switch
    {
        SocketException socket => socket.SocketErrorCode.ToString(),
        _ => exception.GetType().FullName ?? exception.GetType().Name,
    };

    private TimeSpan RemainingQuiet()
    {
        TimeSpan remaining = _quietPeriod - _time.GetElapsedTime(_lastFailureAt);
        return remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero;
    }

    private void OnQuiet()
    {
        long failures;
        TimeSpan duration;
        lock (_lock)
        {
            if (!_inEpisode || !_succeededSinceFailure || _disposed)
            {
                // A failure came after the success that armed the timer: the episode goes on.
                return;
            }

            TimeSpan remaining = RemainingQuiet();
            if (remaining > TimeSpan.Zero)
            {
                // Fired for an earlier arming, just before a later one moved it.
                _timer!.Change(remaining, Timeout.InfiniteTimeSpan);
                return;
            }

            failures = _failures;
            duration = _time.GetElapsedTime(_startedAt, _lastFailureAt);
            _failures = 0;
            Volatile.Write(ref _inEpisode, false);
            Volatile.Write(ref _succeededSinceFailure, false);
        }

        try
        {
            _recovered(failures, duration);
        }
        catch (Exception)
        {
            // The callback only logs; a logger that throws must not take the process down from a timer thread.
        }
    }
}
