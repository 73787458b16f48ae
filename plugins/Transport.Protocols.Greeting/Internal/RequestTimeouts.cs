using System.IO.Pipelines;

namespace Transport.Protocols.Greeting.Internal;

/// <summary>
/// One heartbeat for every connection's deadline, instead of a timer per connection: each second it walks the
/// registered connections and cancels the pending read of those past their deadline
/// (<see cref="PipeReader.CancelPendingRead"/>, which allocates nothing). Precision is one second.
/// </summary>
internal sealed class RequestTimeouts : IDisposable
{
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(1);

    private readonly TimeProvider _time;
    private readonly object _lock = new();
    private readonly ITimer _heartbeat;
    private Deadline? _head;

    public RequestTimeouts(TimeProvider time)
    {
        _time = time;
        _heartbeat = time.CreateTimer(static s => ((RequestTimeouts)s!).Tick(), this, Period, Period);
    }

    public Deadline Register(PipeReader input)
    {
        var deadline = new Deadline(this, input);
        lock (_lock)
        {
            deadline.Next = _head;
            if (_head is not null)
            {
                _head.Previous = deadline;
            }

            _head = deadline;
        }

        return deadline;
    }

    public void Dispose() => _heartbeat.Dispose();

    private void Unregister(Deadline deadline)
    {
        lock (_lock)
        {
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
        long now = _time.GetTimestamp();
        lock (_lock)
        {
            for (Deadline? d = _head; d is not null; d = d.Next)
            {
                d.Check(now);
            }
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

        public Deadline? Previous { get; set; }

        /// <summary>Whether the deadline passed (the pending read was cancelled for it).</summary>
        public bool Expired => Volatile.Read(ref _expired) != 0;

        public void Set(TimeSpan timeout) =>
            Volatile.Write(ref _expires, _owner._time.GetTimestamp() + (long)(timeout.TotalSeconds * _owner._time.TimestampFrequency));

        public void Clear() => Volatile.Write(ref _expires, long.MaxValue);

        public void Check(long now)
        {
            if (now >= Volatile.Read(ref _expires) && Interlocked.Exchange(ref _expired, 1) == 0)
            {
                _input.CancelPendingRead();
            }
        }

        public void Dispose() => _owner.Unregister(this);
    }
}
