using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Time.Testing;

namespace Transport.KeyValue.Tests;

/// <summary>CLIENT ID, INFO, LIST, SETNAME and GETNAME: Redis's replies and fields, over every stream transport.</summary>
public sealed class ClientCommandsTests
{
    public static IEnumerable<object[]> StreamTransports => TestTransports.Streams;

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task ClientInfo_ShowsTheConnectionsOwnFields_AndNamesAsSet(TestTransport transport)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport, expiryClock: new FakeTimeProvider());
        await using ConnectionContext client = await server.ConnectAsync();

        long id = long.Parse((await client.CallAsync("CLIENT", "ID"))[1..], System.Globalization.CultureInfo.InvariantCulture);
        string info = await client.CallAsync("CLIENT", "INFO");
        Assert.EndsWith("\n", info, StringComparison.Ordinal);
        Dictionary<string, string> fields = Fields(info);
        Assert.Equal(id.ToString(System.Globalization.CultureInfo.InvariantCulture), fields["id"]);
        Assert.Equal("", fields["name"]);
        Assert.Equal("0", fields["db"]);
        Assert.Equal("0", fields["age"]);
        Assert.Equal("0", fields["idle"]);
        Assert.Equal("client|info", fields["cmd"]);
        Assert.Equal(transport == TestTransport.Unix ? "U" : "N", fields["flags"]);
        if (transport is TestTransport.Tcp or TestTransport.TcpIPv6)
        {
            // The server's view of the connection is the client's view reversed.
            Assert.Equal(Redis(client.LocalEndPoint!), fields["addr"]);
            Assert.Equal(Redis(client.RemoteEndPoint!), fields["laddr"]);
            Assert.NotEqual("-1", fields["fd"]);
        }
        else if (transport == TestTransport.Unix)
        {
            string path = server.Bindings[0].EndPoint.ToString()!;
            Assert.Equal(path + ":0", fields["addr"]);
            Assert.Equal(path + ":0", fields["laddr"]);
        }

        Assert.Equal("(nil)", await client.CallAsync("CLIENT", "GETNAME"));
        Assert.Equal("OK", await client.CallAsync("CLIENT", "SETNAME", "worker-1"));
        Assert.Equal("worker-1", await client.CallAsync("client", "getname"));
        Assert.Equal("worker-1", Fields(await client.CallAsync("CLIENT", "INFO"))["name"]);
        Assert.Equal("-ERR Client names cannot contain spaces, newlines or special characters.", await client.CallAsync("CLIENT", "SETNAME", "two words"));
        Assert.Equal("-ERR Client names cannot contain spaces, newlines or special characters.", await client.CallAsync("CLIENT", "SETNAME", "line\nbreak"));
        Assert.Equal("worker-1", await client.CallAsync("CLIENT", "GETNAME"));
        Assert.Equal("OK", await client.CallAsync("CLIENT", "SETNAME", ""));
        Assert.Equal("(nil)", await client.CallAsync("CLIENT", "GETNAME"));
        Assert.Equal("OK", await client.CallAsync("CLIENT", "SETINFO", "LIB-NAME", "tests"));
        Assert.Equal("tests", Fields(await client.CallAsync("CLIENT", "INFO"))["lib-name"]);
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task ClientList_OneLinePerConnectionInIdOrder_WithAgeIdleAndLastCommand(TestTransport transport)
    {
        var clock = new FakeTimeProvider();
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport, expiryClock: clock);
        await using ConnectionContext first = await server.ConnectAsync();
        await using ConnectionContext second = await server.ConnectAsync();

        // The server numbers connections in the order it accepts them, which need not be the order the two
        // clients connected in, so each line is matched to its client by id.
        string firstId = (await first.CallAsync("CLIENT", "ID"))[1..];
        string secondId = (await second.CallAsync("CLIENT", "ID"))[1..];
        Assert.Equal("OK", await first.CallAsync("SET", "k", "v"));
        Assert.Equal("OK", await second.CallAsync("CLIENT", "SETNAME", "second"));

        clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal("v", await first.CallAsync("GET", "k"));
        clock.Advance(TimeSpan.FromSeconds(2));

        string list = await second.CallAsync("CLIENT", "LIST");
        string[] lines = list.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.EndsWith("\n", list, StringComparison.Ordinal);
        Assert.True(long.Parse(Fields(lines[0])["id"], System.Globalization.CultureInfo.InvariantCulture) < long.Parse(Fields(lines[1])["id"], System.Globalization.CultureInfo.InvariantCulture));
        Dictionary<string, string> one = Fields(lines.Single(line => Fields(line)["id"] == firstId));
        Dictionary<string, string> two = Fields(lines.Single(line => Fields(line)["id"] == secondId));
        Assert.Equal(("7", "2", "get", ""), (one["age"], one["idle"], one["cmd"], one["name"]));
        Assert.Equal(("7", "0", "client|list", "second"), (two["age"], two["idle"], two["cmd"], two["name"]));
        Assert.StartsWith("id=", lines[0], StringComparison.Ordinal);
        Assert.Equal(["id", "addr", "laddr", "fd", "name", "age", "idle", "flags", "db"], one.Keys.Take(9));

        Assert.Equal(Fields(await first.CallAsync("CLIENT", "INFO"))["id"], Fields(await second.CallAsync("CLIENT", "LIST", "ID", one["id"]))["id"]);
        Assert.Equal("", await second.CallAsync("CLIENT", "LIST", "TYPE", "pubsub"));
        Assert.Equal(2, (await second.CallAsync("CLIENT", "LIST", "TYPE", "normal")).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public async Task ClientErrors_AreRedissAndTheConnectionCarriesOn()
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(TestTransport.Memory);
        await using ConnectionContext client = await server.ConnectAsync();

        Assert.Equal("-ERR wrong number of arguments for 'client' command", await client.CallAsync("CLIENT"));
        Assert.Equal("-ERR unknown subcommand 'nosuch'. Try CLIENT HELP.", await client.CallAsync("CLIENT", "nosuch"));
        Assert.Equal("-ERR wrong number of arguments for 'client|info' command", await client.CallAsync("CLIENT", "INFO", "x"));
        Assert.Equal("-ERR wrong number of arguments for 'client|setname' command", await client.CallAsync("CLIENT", "SETNAME"));
        Assert.Equal("-ERR wrong number of arguments for 'client|getname' command", await client.CallAsync("CLIENT", "GETNAME", "x"));
        Assert.Equal("-ERR wrong number of arguments for 'client|id' command", await client.CallAsync("CLIENT", "ID", "x"));
        Assert.Equal("-ERR syntax error", await client.CallAsync("CLIENT", "LIST", "nosuch"));
        Assert.Equal("-ERR Unknown client type 'nosuch'", await client.CallAsync("CLIENT", "LIST", "TYPE", "nosuch"));
        Assert.Equal("-ERR Invalid client ID", await client.CallAsync("CLIENT", "LIST", "ID", "x"));
        Assert.Equal("", await client.CallAsync("CLIENT", "LIST", "ID", "999999"));
        Assert.Equal("PONG", await client.CallAsync("PING"));
    }

    /// <summary>A CLIENT line's fields in order: <c>id=3 addr=… name= …</c>.</summary>
    internal static Dictionary<string, string> Fields(string line)
    {
        var fields = new Dictionary<string, string>();
        foreach (string pair in line.TrimEnd('\n').Split(' '))
        {
            int equals = pair.IndexOf('=', StringComparison.Ordinal);
            fields.Add(pair[..equals], pair[(equals + 1)..]);
        }

        return fields;
    }

    /// <summary>Redis's address form: <c>ip:port</c>, an IPv6 address in brackets.</summary>
    private static string Redis(EndPoint endPoint)
    {
        var ip = (IPEndPoint)endPoint;
        IPAddress address = ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address;
        return new IPEndPoint(address, ip.Port).ToString();
    }
}
