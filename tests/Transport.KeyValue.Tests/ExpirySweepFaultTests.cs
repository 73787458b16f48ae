using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Transport.Protocols.KeyValue;

namespace Transport.KeyValue.Tests;

/// <summary>
/// The store's once-a-second expiry sweep runs on a timer, where an exception would end the process. The clock is code
/// the user gives the protocol; one that throws must be logged, and the sweep and the server carry on.
/// </summary>
public sealed class ExpirySweepFaultTests
{
    [Fact]
    public async Task ASweepWhoseClockThrows_IsLoggedAtError_AndTheNextSweepStillExpiresKeys()
    {
        var clock = new FailingClock();
        await using TransportTestServer server = await KeyValueServer.StartAsync(TestTransport.Memory, expiryClock: clock);
        await using ConnectionContext client = await server.ConnectAsync();
        Assert.Equal("OK", await client.CallAsync("SET", "k", "v", "PX", "500"));

        // FakeTimeProvider runs due timers inside Advance: a sweep that lets the clock's exception out throws here
        // (on the system clock, it would have ended the process from a timer thread).
        clock.Failing = true;
        clock.Advance(TimeSpan.FromSeconds(1));
        clock.Failing = false;

        TestLogEntry logged = Assert.Single(server.Logs.At(LogLevel.Error), e => e.Category == typeof(KeyValueProtocol).FullName);
        Assert.IsType<InvalidOperationException>(logged.Exception);

        // The key expired during the failed sweep; the next sweep removes it without anyone reading it.
        Assert.Equal(":1", await client.CallAsync("DBSIZE"));
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(":0", await client.CallAsync("DBSIZE"));
    }

    private sealed class FailingClock : FakeTimeProvider
    {
        public bool Failing { get; set; }

        public override long GetTimestamp() =>
            Failing ? throw new InvalidOperationException("The clock failed.") : base.GetTimestamp();
    }
}
