#region docs:readme-uppercase-tests
using Microsoft.AspNetCore.Connections;
using Transport.Testing;
using Xunit;

public class UppercaseTests
{
    public static IEnumerable<object[]> Transports => TestTransports.All;   // Memory, Tcp, TcpIPv6, Unix, Udp

    [Theory, MemberData(nameof(Transports))]
    public async Task Uppercases(TestTransport transport)
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<UppercaseProtocol>(transport);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync("hello"u8.ToArray());

        Assert.Equal("HELLO"u8.ToArray(), await client.ReceiveExactlyAsync(5));
    }
}
#endregion
