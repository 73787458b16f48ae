using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace TransportProtocol1.Tests;

/// <summary>The protocol's behaviour, written once, run over in-memory, TCP (IPv4 and IPv6), Unix socket and UDP.</summary>
public class UpperLineProtocolTests
{
    public static IEnumerable<object[]> Transports => TestTransports.All;

    public static IEnumerable<object[]> Streams => TestTransports.Streams;

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Line_ComesBackUpperCased(TestTransport transport)
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<UpperLineProtocol>(transport);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync("hello\r\nworld\n"u8.ToArray());

        Assert.Equal("HELLO\r\nWORLD\r\n"u8.ToArray(), await client.ReceiveExactlyAsync(14));
    }

    [Theory]
    [MemberData(nameof(Streams))]
    public async Task LineSentOneByteAtATime_ComesBackWhole(TestTransport transport)
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<UpperLineProtocol>(transport);
        await using ConnectionContext client = await server.ConnectAsync();

        foreach (byte b in "split\n"u8.ToArray())
        {
            await client.SendAsync(new[] { b });
        }

        Assert.Equal("SPLIT\r\n"u8.ToArray(), await client.ReceiveExactlyAsync(7));
    }

    [Theory]
    [MemberData(nameof(Streams))]
    public async Task LineLongerThanTheMaximum_ClosesThatConnection_WithAnError(TestTransport transport)
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<UpperLineProtocol>(transport);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync(new byte[5000]);

        Assert.Equal("ERROR line too long\r\n"u8.ToArray(), await client.ReceiveToEndAsync());
        // The client's bad input is logged at Debug without a stack trace, never as a server error.
        await TestTimeouts.UntilAsync(() => server.Logs.At(LogLevel.Debug).Any(e => e.Message.Contains("broke protocol", StringComparison.Ordinal)));
        Assert.DoesNotContain(server.Logs.Entries, e => e.Level >= LogLevel.Warning);
    }
}
