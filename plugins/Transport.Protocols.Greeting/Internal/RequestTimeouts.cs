using System.IO.Pipelines;
using Microsoft.Extensions.Logging;

namespace Transport.Protocols.Greeting.Internal;

/// <summary>
/// One heartbeat for every connection's deadline, instead of a timer per connection: each second it walks the
/// registered connections and cancels the pending read of those past their deadline
/// (<see cref="PipeReader.CancelPendingRead"/>, which allocates nothing). Precision is one second: every
/// connection past its deadline is woken by the first tick after it, however many there are.
/// </summary>
internal sealed partial class RequestTimeouts : IDisposable
{
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(1);

    private readonly TimeProvider _time;
    private readonly object _lock = new();
    private readonly ILogger _logger;
    private readonly ITimer _heartbeat;
    // The expired deadlines of the current tick, reused so a tick allocates nothing once it has grown.
    private readonly List<Deadline> _expired = [];
    private Deadline? _head;
    private int _count;
    private int _ticking;

    public RequestTimeouts(TimeProvider time, ILogger logger)
    {
        _time = time;
        _logger = logger;
        _heartbeat = time.CreateTimer(static s => ((RequestTimeouts)s!).Tick(), this, Period, Period);
    }

    /// <summary>Registers a connection whose deadline is <paramref name="timeout"/> from now.</summary>
    public Deadline Register(PipeReader input, TimeSpan timeout)
    {
        var deadline = new Deadline(this, input);
        deadline.Set(timeout);
        lock (_lock)
        {
            _count++;
            deadline.Registered = true;
            deadline.Next = _head;
            if (_head is not null)
            {
                _head.Previous = deadline;
            }

            _head = deadline;
        }

        return deadline;
    }

    /// <summary>The registered deadlines.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    public void Dispose() => _heartbeat.Dispose();

    private void Unregister(Deadline deadline)
    {
        lock (_lock)
        {
            if (!deadline.Registered)
            {
                return;
            }

            deadline.Registered = false;
            _count--;
            if (deadline.Previous is not null)
            {
                deadline.Previous.Next = deadline.Next;
            }
            else if (_head == deadline)
            {
                _head = deadline.Next;
            }

            if (deadline.Next is not null)
            {
                deadline.Next.Previous = deadline.Previous;
            }

            deadline.Next = deadline.Previous = null;
        }
    }

    private void Tick()
    {
        // Timer callbacks can overlap when a tick runs long; one walk at a time is enough (the next catches up).
        if (Interlocked.Exchange(ref _ticking, 1) != 0)
        {
            return;
        }

        try
        {
            long now = _time.GetTimestamp();
            lock (_lock)
            {
                for (Deadline? d = _head; d is not null; d = d.Next)
                {
                    if (d.TryExpire(now))
                    {
                        _expired.Add(d);
                    }
                }
            }

            // Cancelling outside the lock and the walk: with inline pipe scheduling the protocol resumes inside
            // CancelPendingRead, answers, and unregisters its deadline, which must neither cut a walk of the list
            // nor run every connection's response under the lock that Register and Unregister take.
            foreach (Deadline d in _expired)
            {
                try
                {
                    d.Cancel();
                }
                catch (Exception ex)
                {
                    Log.TimeoutFailed(_logger, ex);
                }
            }
        }
        catch (Exception ex)
        {
            // An exception escaping a timer callback ends the process.
            Log.TimeoutFailed(_logger, ex);
        }
        finally
        {
            _expired.Clear();
            Volatile.Write(ref _ticking, 0);
        }
    }

    /// <summary>One connection's deadline; dispose it when the connection ends.</summary>
    internal sealed class Deadline : IDisposable
    {
        private readonly RequestTimeouts _owner;
        private readonly PipeReader _input;
        private long _expires = long.MaxValue;
        private int _expired;

        public Deadline(RequestTimeouts owner, PipeReader input)
        {
            _owner = owner;
            _input = input;
        }

        public Deadline? Next { get; set; }

        /// <summary>Whether it is in the owner's list; changed under the owner's lock.</summary>
        public bool Registered { get; set; }

        public Deadline? Previous { get; set; }

        /// <summary>Whether the deadline passed (the pending read was cancelled for it).</summary>
        public bool Expired => Volatile.Read(ref _expired) != 0;

        public void Set(TimeSpan timeout) =>
            Volatile.Write(ref _expires, _owner._time.GetTimestamp() + (long)(timeout.TotalSeconds * _owner._time.TimestampFrequency));

        public void Clear() => Volatile.Write(ref _expires, long.MaxValue);

        /// <summary>Marks the deadline expired if it has passed and was not marked before.</summary>
        public bool TryExpire(long now) => now >= Volatile.Read(ref _expires) && Interlocked.Exchange(ref _expired, 1) == 0;

        /// <summary>Wakes the protocol's pending read; it sees <see cref="Expired"/> and answers.</summary>
        public void Cancel() => _input.CancelPendingRead();

        public void Dispose() => _owner.Unregister(this);
    }

    private static partial class Log
    {
        [LoggerMessage(2, LogLevel.Error, "The request timeout heartbeat failed; it carries on at the next tick.")]
        public static partial void TimeoutFailed(ILogger logger, Exception exception);
    }
}
