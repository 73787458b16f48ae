using System.IO.Pipelines;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using NSubstitute;
using NSubstitute.ExceptionExtensions;
using Transport.Protocols.Greeting.Internal;

namespace Transport.Tests;

/// <summary>The greeting server's deadline heartbeat, driven by a fake clock.</summary>
public sealed class RequestTimeoutsTests
{
    [Fact]
    public void Heartbeat_WakesEveryExpiredConnection_EvenWhenEachUnregistersInsideItsWakeUp()
    {
        var time = new FakeTimeProvider();
        var logs = new TestLoggerProvider();
        using var timeouts = new RequestTimeouts(time, logs.CreateLogger("test"));
        var readers = new List<PipeReader>();
        for (int i = 0; i < 100; i++)
        {
            // What an inline pipe continuation does: the protocol answers and its deadline is disposed, inside the cancel.
            PipeReader reader = Substitute.For<PipeReader>();
            RequestTimeouts.Deadline deadline = timeouts.Register(reader, TimeSpan.FromSeconds(5));
            reader.When(r => r.CancelPendingRead()).Do(_ => deadline.Dispose());
            readers.Add(reader);
        }

        time.Advance(TimeSpan.FromSeconds(5));

        Assert.All(readers, r => r.Received(1).CancelPendingRead());
    }

    [Fact]
    public void Heartbeat_ExceptionFromOneWakeUp_IsLoggedAndContained_OthersAreStillWoken()
    {
        var time = new FakeTimeProvider();
        var logs = new TestLoggerProvider();
        using var timeouts = new RequestTimeouts(time, logs.CreateLogger("test"));
        PipeReader healthy1 = Substitute.For<PipeReader>();
        PipeReader broken = Substitute.For<PipeReader>();
        PipeReader healthy2 = Substitute.For<PipeReader>();
        broken.When(r => r.CancelPendingRead()).Throw(new InvalidOperationException("boom"));
        foreach (PipeReader reader in new[] { healthy1, broken, healthy2 })
        {
            timeouts.Register(reader, TimeSpan.FromSeconds(1));
        }

        // The fake clock runs the timer callback on this thread: an escaping exception would surface here.
        time.Advance(TimeSpan.FromSeconds(1));

        healthy1.Received(1).CancelPendingRead();
        healthy2.Received(1).CancelPendingRead();
        TestLogEntry error = Assert.Single(logs.At(LogLevel.Error));
        Assert.Equal("boom", error.Exception?.Message);
    }

    [Fact]
    public void Heartbeat_DeadlineNotYetPassed_IsNotWoken_AndAClearedOneNever()
    {
        var time = new FakeTimeProvider();
        using var timeouts = new RequestTimeouts(time, new TestLoggerProvider().CreateLogger("test"));
        PipeReader later = Substitute.For<PipeReader>();
        PipeReader cleared = Substitute.For<PipeReader>();
        timeouts.Register(later, TimeSpan.FromSeconds(3));
        RequestTimeouts.Deadline clearedDeadline = timeouts.Register(cleared, TimeSpan.FromSeconds(1));
        clearedDeadline.Clear();

        time.Advance(TimeSpan.FromSeconds(2));
        later.DidNotReceive().CancelPendingRead();

        time.Advance(TimeSpan.FromSeconds(10));
        later.Received(1).CancelPendingRead();
        cleared.DidNotReceive().CancelPendingRead();
    }
}
