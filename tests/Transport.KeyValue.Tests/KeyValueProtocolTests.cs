using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Transport.KeyValue.Tests;

/// <summary>The RESP2 key-value plugin over every transport, through the test kit and a minimal RESP client.</summary>
public sealed class KeyValueProtocolTests
{
    public static IEnumerable<object[]> AllTransports => TestTransports.All;

    public static IEnumerable<object[]> StreamTransports => TestTransports.Streams;

    [Theory]
    [MemberData(nameof(AllTransports))]
    public async Task CoreCommands_BehaveLikeRedis(TestTransport transport)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport);
        await using ConnectionContext client = await server.ConnectAsync();

        Assert.Equal("PONG", await client.CallAsync("PING"));
        Assert.Equal("hi there", await client.CallAsync("ping", "hi there"));
        Assert.Equal("échø", await client.CallAsync("ECHO", "échø"));
        Assert.Equal("(nil)", await client.CallAsync("GET", "k"));
        Assert.Equal("OK", await client.CallAsync("SET", "k", "v"));
        Assert.Equal("v", await client.CallAsync("get", "k"));
        Assert.Equal(":1", await client.CallAsync("EXISTS", "k"));
        Assert.Equal(":2", await client.CallAsync("EXISTS", "k", "k", "missing"));
        Assert.Equal(":1", await client.CallAsync("INCR", "n"));
        Assert.Equal(":11", await client.CallAsync("INCRBY", "n", "10"));
        Assert.Equal(":10", await client.CallAsync("DECR", "n"));
        Assert.Equal("[v, (nil), 10]", await client.CallAsync("MGET", "k", "missing", "n"));
        Assert.Equal(":2", await client.CallAsync("DEL", "k", "n", "missing"));
        Assert.Equal(":0", await client.CallAsync("EXISTS", "k"));
        Assert.Equal("OK", await client.CallAsync("MSET", "a", "1", "b", "2"));
        Assert.Equal(":2", await client.CallAsync("DBSIZE"));
        Assert.Equal("OK", await client.CallAsync("FLUSHDB"));
        Assert.Equal(":0", await client.CallAsync("DBSIZE"));
        Assert.Equal("OK", await client.CallAsync("SELECT", "0"));
        Assert.Equal("-ERR DB index is out of range", await client.CallAsync("SELECT", "1"));
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task Set_Options_NxXxGetKeepTtl_AndTheirErrors(TestTransport transport)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport);
        await using ConnectionContext client = await server.ConnectAsync();

        Assert.Equal("(nil)", await client.CallAsync("SET", "k", "1", "XX"));
        Assert.Equal("OK", await client.CallAsync("SET", "k", "1", "NX"));
        Assert.Equal("(nil)", await client.CallAsync("SET", "k", "2", "NX"));
        Assert.Equal("1", await client.CallAsync("SET", "k", "2", "GET"));
        Assert.Equal("OK", await client.CallAsync("SET", "k", "3", "EX", "100"));
        Assert.Equal("OK", await client.CallAsync("SET", "k", "4", "KEEPTTL"));
        Assert.InRange(long.Parse((await client.CallAsync("TTL", "k"))[1..], System.Globalization.CultureInfo.InvariantCulture), 1, 100);
        Assert.Equal("OK", await client.CallAsync("SET", "k", "5"));
        Assert.Equal(":-1", await client.CallAsync("TTL", "k"));
        Assert.Equal(":-2", await client.CallAsync("TTL", "missing"));
        Assert.Equal("-ERR syntax error", await client.CallAsync("SET", "k", "v", "NX", "XX"));
        Assert.Equal("-ERR syntax error", await client.CallAsync("SET", "k", "v", "EX", "1", "PX", "1"));
        Assert.Equal("-ERR syntax error", await client.CallAsync("SET", "k", "v", "EX"));
        Assert.Equal("-ERR value is not an integer or out of range", await client.CallAsync("SET", "k", "v", "EX", "ten"));
        Assert.Equal("-ERR invalid expire time in 'set' command", await client.CallAsync("SET", "k", "v", "PX", "0"));
        Assert.Equal("-ERR wrong number of arguments for 'set' command", await client.CallAsync("SET", "k"));
        Assert.Equal("5", await client.CallAsync("GET", "k"));
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task SetWithPxOrEx_ExpiresTheKey(TestTransport transport)
    {
        var clock = new FakeTimeProvider();
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport, expiryClock: clock);
        await using ConnectionContext client = await server.ConnectAsync();

        Assert.Equal("OK", await client.CallAsync("SET", "short", "v", "PX", "50"));
        Assert.Equal("OK", await client.CallAsync("SET", "long", "v", "EX", "1000"));
        Assert.InRange(long.Parse((await client.CallAsync("PTTL", "short"))[1..], System.Globalization.CultureInfo.InvariantCulture), 0, 50);

        clock.Advance(TimeSpan.FromMilliseconds(49));
        Assert.Equal("v", await client.CallAsync("GET", "short"));
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal("(nil)", await client.CallAsync("GET", "short"));

        Assert.Equal(":0", await client.CallAsync("EXISTS", "short"));
        Assert.Equal("v", await client.CallAsync("GET", "long"));
        Assert.Equal(":1", await client.CallAsync("PEXPIRE", "long", "20"));
        clock.Advance(TimeSpan.FromMilliseconds(20));
        Assert.Equal("(nil)", await client.CallAsync("GET", "long"));
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task Incr_OnNonInteger_OrOverflow_IsAnError_AndTheConnectionCarriesOn(TestTransport transport)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.CallAsync("SET", "s", "abc");
        await client.CallAsync("SET", "max", long.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal("-ERR value is not an integer or out of range", await client.CallAsync("INCR", "s"));
        Assert.Equal("-ERR increment or decrement would overflow", await client.CallAsync("INCR", "max"));
        Assert.Equal("-ERR value is not an integer or out of range", await client.CallAsync("INCRBY", "n", "1.5"));
        Assert.Equal("PONG", await client.CallAsync("PING"));
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task UnknownCommandsAndWrongArity_GetErrors_NotADroppedConnection(TestTransport transport)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport);
        await using ConnectionContext client = await server.ConnectAsync();

        Assert.Equal("-ERR unknown command 'HSET', with args beginning with: 'h' 'f' 'v' ", await client.CallAsync("HSET", "h", "f", "v"));
        Assert.Equal("-ERR wrong number of arguments for 'get' command", await client.CallAsync("GET"));
        Assert.Equal("-ERR wrong number of arguments for 'get' command", await client.CallAsync("GET", "a", "b"));
        Assert.Equal("PONG", await client.CallAsync("PING"));
        Assert.Empty(server.Logs.At(LogLevel.Error));
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task CommandsRedisToolsSendAtStart_AreAnswered(TestTransport transport)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport);
        await using ConnectionContext client = await server.ConnectAsync();

        Assert.Equal("[]", await client.CallAsync("COMMAND", "DOCS"));
        Assert.StartsWith(":", await client.CallAsync("COMMAND", "COUNT"), StringComparison.Ordinal);
        Assert.Equal("[save, , appendonly, no]", await client.CallAsync("CONFIG", "GET", "*"));
        Assert.Equal("[appendonly, no]", await client.CallAsync("CONFIG", "GET", "appendonly"));
        Assert.Equal("OK", await client.CallAsync("CLIENT", "SETNAME", "me"));
        Assert.StartsWith("-NOPROTO", await client.CallAsync("HELLO", "3"), StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task ThousandPipelinedCommands_InOneSend_AreAnsweredInOrder(TestTransport transport)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport);
        await using ConnectionContext client = await server.ConnectAsync();
        byte[] batch = Enumerable.Range(0, 1000).SelectMany(i => Resp.Command("INCR", "counter")).ToArray();

        await client.SendAsync(batch);

        for (int i = 1; i <= 1000; i++)
        {
            Assert.Equal(":" + i, await client.ReadReplyAsync());
        }
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task CommandSentOneByteAtATime_IsAnsweredOnce(TestTransport transport)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport);
        await using ConnectionContext client = await server.ConnectAsync();

        foreach (byte b in Resp.Command("SET", "key", "a value with spaces").Concat(Resp.Command("GET", "key")))
        {
            await client.SendAsync(new[] { b });
        }

        Assert.Equal("OK", await client.ReadReplyAsync());
        Assert.Equal("a value with spaces", await client.ReadReplyAsync());
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task InlineCommands_AreUnderstood(TestTransport transport)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync("PING\r\n\r\nset \"a key\" 'it s'\nSET b \"x\\ty\\x41\"\r\nget \"a key\"\r\nGET b\n"u8.ToArray());

        Assert.Equal("PONG", await client.ReadReplyAsync());
        Assert.Equal("OK", await client.ReadReplyAsync());
        Assert.Equal("OK", await client.ReadReplyAsync());
        Assert.Equal("it s", await client.ReadReplyAsync());
        Assert.Equal("x\tyA", await client.ReadReplyAsync());
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task LargeValue_SpanningManyReceives_RoundTrips(TestTransport transport)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport);
        await using ConnectionContext client = await server.ConnectAsync();
        string value = string.Create(300_000, 0, (span, _) =>
        {
            for (int i = 0; i < span.Length; i++)
            {
                span[i] = (char)('a' + (i % 26));
            }
        });

        Assert.Equal("OK", await client.CallAsync("SET", "big", value));
        Assert.Equal(value, await client.CallAsync("GET", "big"));
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task Quit_RepliesOk_ThenClosesTheConnection(TestTransport transport)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync(Resp.Command("QUIT").Concat(Resp.Command("PING")).ToArray());

        Assert.Equal("+OK\r\n"u8.ToArray(), await client.ReceiveToEndAsync());
        Assert.Empty(server.Logs.At(LogLevel.Error));
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task ConcurrentIncrFromManyConnections_IsAtomic_AndTheStoreIsShared(TestTransport transport)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport);

        await Task.WhenAll(Enumerable.Range(0, 20).Select(async _ =>
        {
            await using ConnectionContext client = await server.ConnectAsync();
            await client.SendAsync(Enumerable.Range(0, 100).SelectMany(_ => Resp.Command("INCR", "shared")).ToArray());
            for (int i = 0; i < 100; i++)
            {
                Assert.StartsWith(":", await client.ReadReplyAsync(), StringComparison.Ordinal);
            }
        })).DefaultTimeout();

        await using ConnectionContext reader = await server.ConnectAsync();
        Assert.Equal("2000", await reader.CallAsync("GET", "shared"));
    }

    [Fact]
    public async Task Udp_EachDatagramIsARequestBatch_AnsweredInOneDatagram()
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(TestTransport.Udp);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync(Resp.Command("SET", "k", "v").Concat(Resp.Command("GET", "k")).ToArray());

        Assert.Equal("+OK\r\n$1\r\nv\r\n", Encoding.ASCII.GetString((await client.ReceiveOnceAsync())!));
    }
}
