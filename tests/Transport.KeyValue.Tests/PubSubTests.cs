using System.Globalization;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Transport.KeyValue.Tests;

/// <summary>Redis pub/sub in the KeyValue plugin, over every transport, with Redis's RESP2 reply shapes.</summary>
public sealed class PubSubTests
{
    public static IEnumerable<object[]> AllTransports => TestTransports.All;

    public static IEnumerable<object[]> StreamTransports => TestTransports.Streams;

    [Theory]
    [MemberData(nameof(AllTransports))]
    public async Task Publish_ReachesChannelAndPatternSubscribers_AndAnswersTheReceiverCount(TestTransport transport)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport);
        await using ConnectionContext subscriber = await server.ConnectAsync();
        await using ConnectionContext patterns = await server.ConnectAsync();
        await using ConnectionContext publisher = await server.ConnectAsync();

        Assert.Equal("[subscribe, news, :1]", await subscriber.CallAsync("SUBSCRIBE", "news"));
        Assert.Equal("[psubscribe, n*, :1]", await patterns.CallAsync("PSUBSCRIBE", "n*"));
        Assert.Equal(":2", await publisher.CallAsync("PUBLISH", "news", "hello"));
        Assert.Equal(":1", await publisher.CallAsync("PUBLISH", "nope", "x"));
        Assert.Equal(":0", await publisher.CallAsync("PUBLISH", "other", "y"));

        Assert.Equal("[message, news, hello]", await subscriber.ReadReplyAsync());
        Assert.Equal("[pmessage, n*, news, hello]", await patterns.ReadReplyAsync());
        Assert.Equal("[pmessage, n*, nope, x]", await patterns.ReadReplyAsync());
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task SubscribedMode_AllowsOnlyPubSubPingQuitReset_UntilTheLastUnsubscribe(TestTransport transport)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync(Resp.Command("SUBSCRIBE", "a", "b"));
        Assert.Equal("[subscribe, a, :1]", await client.ReadReplyAsync());
        Assert.Equal("[subscribe, b, :2]", await client.ReadReplyAsync());
        Assert.Equal("[psubscribe, p?, :3]", await client.CallAsync("PSUBSCRIBE", "p?"));
        Assert.Equal("[pong, ]", await client.CallAsync("PING"));
        Assert.Equal("[pong, hi]", await client.CallAsync("PING", "hi"));
        Assert.Equal("-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            await client.CallAsync("GET", "k"));
        Assert.Equal("[unsubscribe, a, :2]", await client.CallAsync("UNSUBSCRIBE", "a"));
        Assert.Equal("[unsubscribe, never, :2]", await client.CallAsync("UNSUBSCRIBE", "never"));
        Assert.Equal("[unsubscribe, b, :1]", await client.CallAsync("UNSUBSCRIBE"));
        Assert.Equal("[punsubscribe, p?, :0]", await client.CallAsync("PUNSUBSCRIBE"));

        // Out of subscribed mode: every command again, and unsubscribing from nothing has Redis's null-channel reply.
        Assert.Equal("(nil)", await client.CallAsync("GET", "k"));
        Assert.Equal("PONG", await client.CallAsync("PING"));
        Assert.Equal("[unsubscribe, (nil), :0]", await client.CallAsync("UNSUBSCRIBE"));
        Assert.Equal("[punsubscribe, (nil), :0]", await client.CallAsync("PUNSUBSCRIBE"));
        Assert.Equal("-ERR wrong number of arguments for 'subscribe' command", await client.CallAsync("SUBSCRIBE"));
        Assert.Equal("-ERR wrong number of arguments for 'publish' command", await client.CallAsync("PUBLISH", "a"));

        Assert.Equal("[subscribe, c, :1]", await client.CallAsync("SUBSCRIBE", "c"));
        Assert.Equal("RESET", await client.CallAsync("RESET"));
        Assert.Equal("(nil)", await client.CallAsync("GET", "k"));
        Assert.Empty(server.Logs.At(LogLevel.Error));
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task Pubsub_ChannelsNumsubNumpat_CountLiveSubscribers_AndForgetThoseThatLeft(TestTransport transport)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport);
        await using ConnectionContext admin = await server.ConnectAsync();
        ConnectionContext one = await server.ConnectAsync();
        await using ConnectionContext two = await server.ConnectAsync();
        await one.SendAsync(Resp.Command("SUBSCRIBE", "alpha", "beta"));
        await one.ReadReplyAsync();
        await one.ReadReplyAsync();
        await two.CallAsync("SUBSCRIBE", "alpha");
        await two.CallAsync("PSUBSCRIBE", "a*");

        Assert.Equal(["alpha", "beta"], SortedItems(await admin.CallAsync("PUBSUB", "CHANNELS")));
        Assert.Equal("[beta]", await admin.CallAsync("PUBSUB", "CHANNELS", "b*"));
        Assert.Equal("[alpha, :2, beta, :1, gamma, :0]", await admin.CallAsync("PUBSUB", "NUMSUB", "alpha", "beta", "gamma"));
        Assert.Equal(":1", await admin.CallAsync("PUBSUB", "NUMPAT"));
        Assert.Equal("-ERR unknown subcommand 'FOO'. Try PUBSUB HELP.", await admin.CallAsync("PUBSUB", "FOO"));

        // A subscriber that goes away is unsubscribed from everything: no stale channel, no stale receiver.
        await one.DisposeAsync();
        // The server logs the connection closed once its protocol has ended (and unsubscribed it).
        await server.Logs.WaitForEventAsync(LogEvents.Hosting.ConnectionClosed, category: LogEvents.Hosting.Category);
        Assert.Equal("[alpha]", await admin.CallAsync("PUBSUB", "CHANNELS"));
        Assert.Equal(":2", await admin.CallAsync("PUBLISH", "alpha", "m"));
        Assert.Equal(":0", await admin.CallAsync("PUBLISH", "beta", "m"));
    }

    [Theory]
    [InlineData("h?llo", "hello", 1)]
    [InlineData("h?llo", "hllo", 0)]
    [InlineData("h*llo", "hllo", 1)]
    [InlineData("h*llo", "heeeello", 1)]
    [InlineData("h*l*o", "hxlylzo", 1)]
    [InlineData("h[ae]llo", "hallo", 1)]
    [InlineData("h[ae]llo", "hillo", 0)]
    [InlineData("h[^e]llo", "hallo", 1)]
    [InlineData("h[^e]llo", "hello", 0)]
    [InlineData("h[a-c]llo", "hbllo", 1)]
    [InlineData("h[c-a]llo", "hbllo", 1)]
    [InlineData("h[a-c]llo", "hdllo", 0)]
    [InlineData("h\\*llo", "h*llo", 1)]
    [InlineData("h\\*llo", "hello", 0)]
    [InlineData("*", "", 1)]
    [InlineData("?", "", 0)]
    [InlineData("news.*", "news.sport", 1)]
    [InlineData("news.*", "news", 0)]
    public async Task PatternSubscriptions_MatchLikeRedisGlobs(string pattern, string channel, int receivers)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(TestTransport.Memory);
        await using ConnectionContext subscriber = await server.ConnectAsync();
        await using ConnectionContext publisher = await server.ConnectAsync();
        await subscriber.CallAsync("PSUBSCRIBE", pattern);

        Assert.Equal(":" + receivers, await publisher.CallAsync("PUBLISH", channel, "m"));
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task SubscribersOwnRepliesAndPushedMessages_ArriveWhole_NeverInterleaved(TestTransport transport)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport);
        await using ConnectionContext subscriber = await server.ConnectAsync();
        await using ConnectionContext publisher = await server.ConnectAsync();
        Assert.Equal("[subscribe, ch, :1]", await subscriber.CallAsync("SUBSCRIBE", "ch"));
        string payload = new('p', 3000);

        // Pipelined PINGs with large arguments on the subscriber while the publisher floods its channel.
        const int Pings = 200;
        Task publishing = Task.Run(async () =>
        {
            for (int i = 0; i < 300; i++)
            {
                Assert.Equal(":1", await publisher.CallAsync("PUBLISH", "ch", payload + i.ToString(CultureInfo.InvariantCulture)));
            }
        });
        await subscriber.SendAsync(Enumerable.Range(0, Pings).SelectMany(i => Resp.Command("PING", payload + "#" + i)).ToArray());

        int pongs = 0;
        int messages = 0;
        while (pongs < Pings || messages < 300)
        {
            string reply = await subscriber.ReadReplyAsync();
            if (reply.StartsWith("[pong, ", StringComparison.Ordinal))
            {
                Assert.Equal("[pong, " + payload + "#" + pongs + "]", reply);
                pongs++;
            }
            else
            {
                Assert.Equal("[message, ch, " + payload + messages + "]", reply);
                messages++;
            }
        }

        await publishing.DefaultTimeout();
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task SubscriberThatStopsReading_IsDisconnectedPastTheOutputLimit_ThePublisherNeverWaits(TestTransport transport)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport, pubSubOutputLimit: 64 * 1024, maxWriteBufferSize: 8192);
        await using ConnectionContext stalled = await server.ConnectAsync();
        await using ConnectionContext healthy = await server.ConnectAsync();
        await using ConnectionContext publisher = await server.ConnectAsync();
        Assert.Equal("[subscribe, ch, :1]", await stalled.CallAsync("SUBSCRIBE", "ch"));
        Assert.Equal("[subscribe, ch, :1]", await healthy.CallAsync("SUBSCRIBE", "ch"));
        string payload = new('x', 8000);

        // The healthy subscriber reads everything, up to the last message, and the publisher keeps at most 4 messages
        // ahead of it; the stalled one reads nothing after subscribing.
        int received = 0;
        using var ahead = new SemaphoreSlim(4);
        Task reading = Task.Run(async () =>
        {
            while (await healthy.ReadReplyAsync() != "[message, ch, last]")
            {
                Interlocked.Increment(ref received);
                ahead.Release();
            }
        });

        int published = 0;
        string answer;
        do
        {
            Assert.True(await ahead.WaitAsync(TestTimeouts.Default), "the healthy subscriber stopped receiving");
            answer = await publisher.CallAsync("PUBLISH", "ch", payload);
            published++;
            Assert.True(published < 100_000, "the stalled subscriber was never disconnected");
        }
        while (answer == ":2");

        Assert.Equal(":1", answer);
        // The stalled subscriber's connection is closed once its protocol has ended (and unsubscribed it).
        await server.Logs.WaitForEventAsync(LogEvents.Hosting.ConnectionClosed, category: LogEvents.Hosting.Category);
        Assert.Equal("[ch, :1]", await publisher.CallAsync("PUBSUB", "NUMSUB", "ch"));
        Assert.Equal(":1", await publisher.CallAsync("PUBLISH", "ch", "last"));
        await reading.DefaultTimeout();
        Assert.Equal(published, received);
        Assert.Contains(server.Logs.Entries, e => e.Message.Contains("disconnected as a slow consumer", StringComparison.Ordinal));
        Assert.Empty(server.Logs.At(LogLevel.Error));
    }

    private static string[] SortedItems(string array) => [.. array.Trim('[', ']').Split(", ").Order(StringComparer.Ordinal)];
}
