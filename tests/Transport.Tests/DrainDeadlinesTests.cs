using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Transport.Sockets.Internal;

namespace Transport.Tests;

/// <summary>
/// The shared drain sweep that replaced a timer per closing socket: a closing connection whose peer does not close in
/// time is aborted once its deadline passes, whatever the others waiting with it do during the sweep.
/// </summary>
public sealed class DrainDeadlinesTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void Waiter_IsAbortedOnlyAfterItsDeadline()
    {
        using var deadlines = new DrainDeadlines(_time, Timeout, NullLogger.Instance);
        var waiter = new Waiter(deadlines);
        deadlines.Add(waiter);

        _time.Advance(Timeout - TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, waiter.Aborts);

        // Within one sweep period (a quarter of the timeout, at most 1 s) of the deadline.
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, waiter.Aborts);
        Assert.Equal(0, deadlines.Count);
    }

    [Fact]
    public void DrainedWaiter_IsNeverAborted()
    {
        using var deadlines = new DrainDeadlines(_time, Timeout, NullLogger.Instance);
        var drained = new Waiter(deadlines);
        var removed = new Waiter(deadlines);
        deadlines.Add(drained);
        deadlines.Add(removed);

        drained.IsDrained = true;
        deadlines.Remove(removed);
        _time.Advance(Timeout * 2);

        Assert.Equal(0, drained.Aborts);
        Assert.Equal(0, removed.Aborts);
        Assert.Equal(0, deadlines.Count);
    }

    [Fact]
    public void Sweep_ReachesEveryExpiredWaiter_WhenEachRemovesItselfDuringTheSweep()
    {
        using var deadlines = new DrainDeadlines(_time, Timeout, NullLogger.Instance);
        // Each abort completes the wait inline, as a socket close can: the waiter marks itself drained and removes
        // itself (and a later one is added by a new closing connection) while the sweep is still walking.
        var waiters = new Waiter[1000];
        for (int i = 0; i < waiters.Length; i++)
        {
            waiters[i] = new Waiter(deadlines) { RemoveOnAbort = true, AddOnAbort = i % 100 == 0 };
            deadlines.Add(waiters[i]);
        }

        _time.Advance(Timeout + TimeSpan.FromSeconds(1));

        Assert.All(waiters, w => Assert.Equal(1, w.Aborts));
        // Only the ten added during the sweep wait; their deadline has not passed.
        Assert.Equal(10, deadlines.Count);
        Assert.All(waiters.Where(w => w.Added is not null), w => Assert.Equal(0, w.Added!.Aborts));
    }

    [Fact]
    public void Sweep_GoesOn_WhenAnAbortThrows()
    {
        using var deadlines = new DrainDeadlines(_time, Timeout, NullLogger.Instance);
        var failing = new Waiter(deadlines) { Throw = true };
        var next = new Waiter(deadlines);
        deadlines.Add(failing);
        deadlines.Add(next);

        _time.Advance(Timeout + TimeSpan.FromSeconds(1));

        Assert.Equal(1, failing.Aborts);
        Assert.Equal(1, next.Aborts);
    }

    [Fact]
    public void WaiterNotYetDue_StaysUntilItsOwnDeadline()
    {
        using var deadlines = new DrainDeadlines(_time, Timeout, NullLogger.Instance);
        var early = new Waiter(deadlines);
        deadlines.Add(early);
        _time.Advance(TimeSpan.FromSeconds(3));
        var late = new Waiter(deadlines);
        deadlines.Add(late);

        _time.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(1, early.Aborts);
        Assert.Equal(0, late.Aborts);

        _time.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(1, late.Aborts);
    }

    private sealed class Waiter : IDrainWaiter
    {
        private readonly DrainDeadlines _deadlines;

        public Waiter(DrainDeadlines deadlines)
        {
            _deadlines = deadlines;
            DrainDeadline = deadlines.DeadlineFromNow();
        }

        public long DrainDeadline { get; }

        public bool IsDrained { get; set; }

        public bool RemoveOnAbort { get; init; }

        public bool AddOnAbort { get; init; }

        public bool Throw { get; init; }

        public Waiter? Added { get; private set; }

        public int Aborts { get; private set; }

        public void OnDrainDeadline()
        {
            Aborts++;
            if (Throw)
            {
                throw new InvalidOperationException("abort failed");
            }

            if (RemoveOnAbort)
            {
                IsDrained = true;
                _deadlines.Remove(this);
            }

            if (AddOnAbort)
            {
                Added = new Waiter(_deadlines);
                _deadlines.Add(Added);
            }
        }
    }
}
