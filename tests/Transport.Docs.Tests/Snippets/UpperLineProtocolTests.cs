#region docs:upper-line-protocol-tests
using Microsoft.AspNetCore.Connections;
using Transport.Testing;
using Xunit;

public class UpperLineProtocolTests
{
    public static IEnumerable<object[]> Transports => TestTransports.All;

    [Theory, MemberData(nameof(Transports))]
    public async Task Line_ComesBackUpperCased(TestTransport transport)
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<UpperLineProtocol>(transport);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync("hello\n"u8.ToArray());

        Assert.Equal("HELLO\r\n"u8.ToArray(), await client.ReceiveExactlyAsync(7));
    }
}
#endregion
