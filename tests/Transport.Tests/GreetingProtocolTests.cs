using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Transport.Hosting;
using Transport.Protocols.Greeting;

namespace Transport.Tests;

/// <summary>The HTTP/1.0 greeting protocol: parsing, every error class, keep-alive and timeouts.</summary>
public sealed class GreetingProtocolTests
{
    private const string Page = "<b>You Connected to the Server!</b></br></br>Brought to you by: <a href=\"austingwalters.com\">Austin Walters!</a>";

    public static IEnumerable<object[]> Streams => TestTransports.Streams;

    [Theory]
    [MemberData(nameof(Streams))]
    public async Task GetRoot_Http10_Returns200WithPageAndHeaders_ThenCloses(TestTransport transport)
    {
        await using TransportTestServer server = await StartAsync(transport);

        HttpAnswer answer = await RequestAsync(server, "GET / HTTP/1.0\r\n\r\n");

        Assert.Equal("HTTP/1.0 200 OK", answer.StatusLine);
        Assert.Equal("text/html; charset=utf-8", answer.Header("Content-Type"));
        Assert.Equal(Encoding.UTF8.GetByteCount(Page).ToString(System.Globalization.CultureInfo.InvariantCulture), answer.Header("Content-Length"));
        Assert.Equal("Transport", answer.Header("Server"));
        Assert.True(DateTimeOffset.TryParse(answer.Header("Date"), out _), "Date header is an HTTP date");
        Assert.Equal("close", answer.Header("Connection"));
        Assert.Equal(Page, answer.Body);
    }

    [Fact]
    public async Task HeadRoot_SendsHeadersWithoutBody()
    {
        await using TransportTestServer server = await StartAsync(TestTransport.Memory);

        await using ConnectionContext client = await server.ConnectAsync();
        await client.SendAsync("HEAD / HTTP/1.0\r\n\r\n"u8.ToArray());
        HttpAnswer answer = Assert.Single(HttpAnswer.ParseMany(await client.ReceiveToEndAsync(), 0));

        Assert.Equal("HTTP/1.0 200 OK", answer.StatusLine);
        Assert.Equal("112", answer.Header("Content-Length"));
        Assert.Equal("", answer.Body);
    }

    [Fact]
    public async Task RequestArrivingOneByteAtATime_IsParsed()
    {
        await using TransportTestServer server = await StartAsync(TestTransport.Memory);
        await using ConnectionContext client = await server.ConnectAsync();

        foreach (byte b in "GET /?from=test HTTP/1.0\r\nHost: x\r\nUser-Agent: slow\r\n\r\n"u8.ToArray())
        {
            await client.SendAsync(new[] { b });
        }

        HttpAnswer answer = HttpAnswer.Parse(await client.ReceiveToEndAsync());
        Assert.Equal("HTTP/1.0 200 OK", answer.StatusLine);
        Assert.Equal(Page, answer.Body);
    }

    [Fact]
    public async Task PipelinedKeepAliveRequests_InOneWrite_AreAnsweredInOrder()
    {
        await using TransportTestServer server = await StartAsync(TestTransport.Tcp);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync(Encoding.ASCII.GetBytes(
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n" +
            "GET /missing HTTP/1.1\r\nHost: a\r\n\r\n" +
            "HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" +
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));

        List<HttpAnswer> answers = HttpAnswer.ParseMany(await client.ReceiveToEndAsync(), 2);
        Assert.Equal(["HTTP/1.0 200 OK", "HTTP/1.0 404 Not Found", "HTTP/1.0 200 OK", "HTTP/1.0 200 OK"], answers.Select(a => a.StatusLine));
        Assert.Equal(["keep-alive", "keep-alive", "keep-alive", "close"], answers.Select(a => a.Header("Connection")));
        Assert.Equal([Page, answers[1].Body, "", Page], answers.Select(a => a.Body));
    }

    [Fact]
    public async Task BodyWithinLimit_IsReadAndDiscarded_KeepAliveContinues()
    {
        await using TransportTestServer server = await StartAsync(TestTransport.Memory);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync(Encoding.ASCII.GetBytes(
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789" +
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));

        List<HttpAnswer> answers = HttpAnswer.ParseMany(await client.ReceiveToEndAsync());
        Assert.Equal(2, answers.Count);
        Assert.All(answers, a => Assert.Equal(Page, a.Body));
    }

    [Fact]
    public async Task MaxRequestsPerConnection_LastAnswerSaysClose()
    {
        await using TransportTestServer server = await StartAsync(TestTransport.Memory, o => o.MaxRequestsPerConnection = 2);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"));

        List<HttpAnswer> answers = HttpAnswer.ParseMany(await client.ReceiveToEndAsync());
        Assert.Equal(["keep-alive", "close"], answers.Select(a => a.Header("Connection")));
    }

    [Theory]
    [InlineData("GARBAGE\r\n\r\n", 400)]
    [InlineData("GET /\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.0 extra\r\n\r\n", 400)]
    [InlineData("GET / HTTP/2.0\r\n\r\n", 505)]
    [InlineData("GET / HTTP/0.9\r\n\r\n", 505)]
    [InlineData("GET / HTTX/1.0\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400)]
    [InlineData("POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc", 405)]
    [InlineData("DELETE / HTTP/1.0\r\n\r\n", 405)]
    [InlineData("BREW / HTTP/1.0\r\n\r\n", 501)]
    [InlineData("GET /other HTTP/1.0\r\n\r\n", 404)]
    [InlineData("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501)]
    [InlineData("GET / HTTP/1.0\r\nBad Name: x\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.0\r\nName : x\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.0\r\nA: b\r\n folded\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.0\r\nNoColon\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.0\r\nContent-Length: abc\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.0\r\nContent-Length: -1\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.0\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.0\r\nX: a\u0000b\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.0\r\nContent-Length: 2000000\r\n\r\n", 413)]
    [InlineData("GET relative HTTP/1.0\r\n\r\n", 400)]
    public async Task BadRequest_GetsItsStatus_AsASmallValidResponse_ThenClose(string request, int status)
    {
        await using TransportTestServer server = await StartAsync(TestTransport.Memory);

        HttpAnswer answer = await RequestAsync(server, request);

        Assert.StartsWith($"HTTP/1.0 {status} ", answer.StatusLine, StringComparison.Ordinal);
        Assert.Equal(Encoding.UTF8.GetByteCount(answer.Body).ToString(System.Globalization.CultureInfo.InvariantCulture), answer.Header("Content-Length"));
        Assert.Equal("text/html; charset=utf-8", answer.Header("Content-Type"));
        Assert.Contains(status.ToString(System.Globalization.CultureInfo.InvariantCulture), answer.Body, StringComparison.Ordinal);
        if (status == 405)
        {
            Assert.Equal("GET, HEAD", answer.Header("Allow"));
        }

        if (status != 404)
        {
            Assert.Equal("close", answer.Header("Connection"));
            Assert.Contains(server.Logs.At(LogLevel.Debug), e => e.Message.Contains($"answered {status} to a bad request", StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData("GET / HTTP/1.0\r\n\n", 200)]
    [InlineData("\r\nGET / HTTP/1.0\r\n\r\n", 200)]
    [InlineData("GET http://example.org/ HTTP/1.0\r\n\r\n", 200)]
    [InlineData("GET http://example.org/x HTTP/1.0\r\n\r\n", 404)]
    [InlineData("get / HTTP/1.0\r\n\r\n", 501)]
    public async Task RobustToRfc9112Forms(string request, int status)
    {
        await using TransportTestServer server = await StartAsync(TestTransport.Memory);

        HttpAnswer answer = await RequestAsync(server, request);

        Assert.StartsWith($"HTTP/1.0 {status} ", answer.StatusLine, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RequestLineTooLong_Gets414()
    {
        await using TransportTestServer server = await StartAsync(TestTransport.Memory);

        HttpAnswer answer = await RequestAsync(server, "GET /" + new string('a', 9000) + " HTTP/1.0\r\n\r\n");

        Assert.StartsWith("HTTP/1.0 414 ", answer.StatusLine, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RequestLineTooLong_WithoutLineEnd_Gets414WithoutWaitingForIt()
    {
        await using TransportTestServer server = await StartAsync(TestTransport.Memory);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync(Encoding.ASCII.GetBytes("GET /" + new string('a', 9000)));

        Assert.StartsWith("HTTP/1.0 414 ", HttpAnswer.Parse(await client.ReceiveToEndAsync()).StatusLine, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TooManyHeaders_Gets431()
    {
        await using TransportTestServer server = await StartAsync(TestTransport.Memory);
        string headers = string.Concat(Enumerable.Range(0, 101).Select(i => $"X-{i}: v\r\n"));

        HttpAnswer answer = await RequestAsync(server, "GET / HTTP/1.0\r\n" + headers + "\r\n");

        Assert.StartsWith("HTTP/1.0 431 ", answer.StatusLine, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HeadersTooLarge_Gets431()
    {
        await using TransportTestServer server = await StartAsync(TestTransport.Memory);
        string headers = string.Concat(Enumerable.Range(0, 40).Select(i => $"X-{i}: {new string('v', 1000)}\r\n"));

        HttpAnswer answer = await RequestAsync(server, "GET / HTTP/1.0\r\n" + headers + "\r\n");

        Assert.StartsWith("HTTP/1.0 431 ", answer.StatusLine, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectionEndsInsideTheHead_Gets400()
    {
        await using TransportTestServer server = await StartAsync(TestTransport.Memory);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync("GET / HTTP/1.0\r\nHost:"u8.ToArray());
        await client.CompleteOutputAsync();

        Assert.StartsWith("HTTP/1.0 400 ", HttpAnswer.Parse(await client.ReceiveToEndAsync()).StatusLine, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SlowClient_RequestNotCompleteInTime_Gets408AndIsClosed()
    {
        var time = new FakeTimeProvider();
        await using TransportTestServer server = await StartAsync(TestTransport.Memory, time: time);
        await using ConnectionContext client = await server.ConnectAsync();
        await client.SendAsync("GET / HTT"u8.ToArray());

        byte[] answer = await AdvanceUntilAnsweredAsync(time, client.ReceiveToEndAsync());

        Assert.StartsWith("HTTP/1.0 408 ", HttpAnswer.Parse(answer).StatusLine, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SilentClient_Gets408AndIsClosed()
    {
        var time = new FakeTimeProvider();
        await using TransportTestServer server = await StartAsync(TestTransport.Memory, time: time);
        await using ConnectionContext client = await server.ConnectAsync();

        byte[] answer = await AdvanceUntilAnsweredAsync(time, client.ReceiveToEndAsync());

        Assert.StartsWith("HTTP/1.0 408 ", HttpAnswer.Parse(answer).StatusLine, StringComparison.Ordinal);
    }

    [Fact]
    public async Task IdleKeptAliveConnection_IsClosedQuietlyAfterKeepAliveTimeout()
    {
        var time = new FakeTimeProvider();
        await using TransportTestServer server = await StartAsync(TestTransport.Memory, time: time);
        await using ConnectionContext client = await server.ConnectAsync();
        await client.SendAsync("GET / HTTP/1.1\r\nHost: a\r\n\r\n"u8.ToArray());

        byte[] everything = await AdvanceUntilAnsweredAsync(time, client.ReceiveToEndAsync());

        HttpAnswer only = Assert.Single(HttpAnswer.ParseMany(everything));
        Assert.Equal("HTTP/1.0 200 OK", only.StatusLine);
    }

    [Fact]
    public async Task ThousandUnfinishedHeads_AllGet408_AtTheHeartbeatThatPassesTheDeadline()
    {
        var time = new FakeTimeProvider();
        await using TransportTestServer server = await StartAsync(TestTransport.Tcp, time: time);
        await using ClientGroup group = await ConnectManyAsync(server, 1000);
        IReadOnlyList<ConnectionContext> clients = group.Clients;
        await Task.WhenAll(clients.Select(c => c.SendAsync("GET / HTTP/1.1\r\nHost: a\r\nX-Unfinished"u8.ToArray())));
        await UntilServedAsync(server, clients.Count);
        Task<byte[]>[] answers = [.. clients.Select(c => c.ReceiveToEndAsync())];

        // The heartbeat at 10 s is the first that sees the 10 s deadline passed: it must reach every connection.
        time.Advance(TimeSpan.FromSeconds(10));

        byte[][] received = await Task.WhenAll(answers).DefaultTimeout();
        Assert.All(received, a => Assert.StartsWith("HTTP/1.0 408 ", HttpAnswer.Parse(a).StatusLine, StringComparison.Ordinal));
    }

    [Fact]
    public async Task ManyIdleKeptAliveConnections_AllCloseQuietly_AtTheHeartbeatThatPassesKeepAliveTimeout()
    {
        var time = new FakeTimeProvider();
        await using TransportTestServer server = await StartAsync(TestTransport.Tcp, time: time);
        await using ClientGroup group = await ConnectManyAsync(server, 400);
        IReadOnlyList<ConnectionContext> clients = group.Clients;
        await Task.WhenAll(clients.Select(async c =>
        {
            await c.SendAsync("GET / HTTP/1.1\r\nHost: a\r\n\r\n"u8.ToArray());
            Assert.Equal("keep-alive", (await ReceiveOneAnswerAsync(c)).Header("Connection"));
        }));
        Task<byte[]>[] rest = [.. clients.Select(c => c.ReceiveToEndAsync())];

        time.Advance(TimeSpan.FromSeconds(5));

        byte[][] received = await Task.WhenAll(rest).DefaultTimeout();
        Assert.All(received, Assert.Empty);
    }

    public static TheoryData<string, string, int> BadRequestLines => new()
    {
        { "lowercase letters, no spaces", "abc\n", 400 },
        { "control bytes", "\u0001\u0002\n", 400 },
        { "50 NUL bytes", new string('\0', 50) + "\n", 400 },
        { "method only", "GET\n", 400 },
        { "method only, CRLF", "GET\r\n", 400 },
        { "control byte in the target", "GET /a\u0001b HTTP/1.0\r\n", 400 },
        { "non-token method", "G(T / HTTP/1.0\r\n", 400 },
        { "unknown protocol", "GET / FOO/1.0\r\n", 400 },
        { "leading space", " GET / HTTP/1.0\r\n", 400 },
        { "two spaces", "GET  / HTTP/1.0\r\n", 400 },
        { "unsupported version", "GET / HTTP/2.0\r\n", 505 },
    };

    [Theory]
    [MemberData(nameof(BadRequestLines))]
    public async Task BadRequestLine_IsAnsweredAndClosed_AtItsLineEnd_WithoutWaitingForTheHead(string label, string requestLine, int status)
    {
        _ = label;
        await using TransportTestServer server = await StartAsync(TestTransport.Tcp, o => o.RequestHeadersTimeout = TimeSpan.FromMinutes(10));

        // The head never ends: an answer can only come from judging the request line alone (else the read times out).
        HttpAnswer answer = await RequestAsync(server, requestLine);

        Assert.StartsWith($"HTTP/1.0 {status} ", answer.StatusLine, StringComparison.Ordinal);
        Assert.Equal("close", answer.Header("Connection"));
    }

    public static TheoryData<string, string> ProvablyBadPartialRequestLines => new()
    {
        { "NUL first", "\0" },
        { "control byte in the method", "GE\u0001" },
        { "non-token byte in the method", "GE(" },
        { "leading space", " " },
        { "tab after the method", "GET\t" },
        { "control byte in the target", "GET /\u007F" },
        { "bare CR inside the line", "GET /\rx" },
        { "a third space", "GET / HTTP/1.0 " },
        { "not HTTP after the target", "GET / FOO" },
        { "version too long", "GET / HTTP/1.00" },
    };

    [Theory]
    [MemberData(nameof(ProvablyBadPartialRequestLines))]
    public async Task ProvablyBadRequestLine_Gets400_BeforeItsLineEndArrives(string label, string partial)
    {
        _ = label;
        await using TransportTestServer server = await StartAsync(TestTransport.Tcp, o => o.RequestHeadersTimeout = TimeSpan.FromMinutes(10));

        HttpAnswer answer = await RequestAsync(server, partial);

        Assert.StartsWith("HTTP/1.0 400 ", answer.StatusLine, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GET")]
    [InlineData("GET / HTTP/1.")]
    [InlineData("GET /a?b=c#d HTTP/1.1\r")]
    [InlineData("\r\n\r\nBREW * HTTP/1")]
    [InlineData("GET http://example.org/\u00e9 HTTP/1.0")]
    public async Task ValidRequestLinePrefix_IsNotJudgedEarly(string partial)
    {
        var time = new FakeTimeProvider();
        await using TransportTestServer server = await StartAsync(TestTransport.Memory, time: time);
        await using ConnectionContext client = await server.ConnectAsync();
        await client.SendAsync(Encoding.Latin1.GetBytes(partial));

        // Only the deadline ends it: a prefix that a valid request can continue must not be rejected.
        byte[] answer = await AdvanceUntilAnsweredAsync(time, client.ReceiveToEndAsync());

        Assert.StartsWith("HTTP/1.0 408 ", HttpAnswer.Parse(answer).StatusLine, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PageText_ComesFromOptions_HtmlEncoded()
    {
        await using TransportTestServer server = await StartAsync(TestTransport.Memory, o =>
        {
            o.Greeting = "Hi <script>alert(1)</script> & co";
            o.Author = "Ann \"A\" O'Neil";
            o.AuthorUrl = "https://example.org/?a=1&b=2";
        });

        HttpAnswer answer = await RequestAsync(server, "GET / HTTP/1.0\r\n\r\n");

        Assert.Equal("<b>Hi &lt;script&gt;alert(1)&lt;/script&gt; &amp; co</b></br></br>Brought to you by: <a href=\"https://example.org/?a=1&amp;b=2\">Ann &quot;A&quot; O&#39;Neil</a>", answer.Body);
    }

    [Fact]
    public async Task BurstOfMalformedAndOversizedRequests_ThenValidRequestsStillServed()
    {
        await using TransportTestServer server = await StartAsync(TestTransport.Tcp);
        string[] bad = ["GARBAGE\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "GET /" + new string('x', 20_000), "\0\0\0\0\r\n\r\n",
            "GET / HTTP/1.0\r\n" + string.Concat(Enumerable.Range(0, 500).Select(i => $"H{i}: v\r\n")) + "\r\n"];

        await Task.WhenAll(Enumerable.Range(0, 100).Select(async i =>
        {
            await using ConnectionContext client = await server.ConnectAsync();
            await client.SendAsync(Encoding.ASCII.GetBytes(bad[i % bad.Length]));
            HttpAnswer answer = HttpAnswer.Parse(await client.ReceiveToEndAsync());
            Assert.Matches("^HTTP/1.0 (400|414|431|505) ", answer.StatusLine);
        })).DefaultTimeout();

        HttpAnswer good = await RequestAsync(server, "GET / HTTP/1.0\r\n\r\n");
        Assert.Equal(Page, good.Body);
        Assert.Empty(server.Logs.At(LogLevel.Error));
    }

    [Fact]
    public async Task BoundToUdp_FailsAtStartWithClearMessage()
    {
        var ex = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() =>
            TransportTestServer.StartAsync(b => b.Transport.AddProtocol<GreetingProtocol>("greeting").Listen("udp://127.0.0.1:0", "greeting")));

        Assert.Contains("Protocol 'greeting' needs a byte stream and cannot serve the datagram endpoint 'udp://127.0.0.1:0'", ex.Message, StringComparison.Ordinal);
    }

    private static Task<TransportTestServer> StartAsync(TestTransport transport, Action<GreetingOptions>? options = null, TimeProvider? time = null) =>
        TransportTestServer.StartAsync(b =>
        {
            if (options is not null)
            {
                b.Host.Services.Configure(options);
            }

            if (time is not null)
            {
                b.Host.Services.AddSingleton(time);
            }

            b.Transport.AddProtocol<GreetingProtocol>("greeting").Listen(b.ListenUrl(transport), "greeting");
        });

    private static async Task<HttpAnswer> RequestAsync(TransportTestServer server, string request)
    {
        await using ConnectionContext client = await server.ConnectAsync();
        await client.SendAsync(Encoding.ASCII.GetBytes(request));
        return HttpAnswer.Parse(await client.ReceiveToEndAsync());
    }

    private static async Task<ClientGroup> ConnectManyAsync(TransportTestServer server, int count)
    {
        var group = new ClientGroup();
        try
        {
            // In batches, so the listen backlog never overflows into SYN retries.
            while (group.Clients.Count < count)
            {
                group.Clients.AddRange(await Task.WhenAll(Enumerable.Range(0, Math.Min(100, count - group.Clients.Count)).Select(_ => server.ConnectAsync())));
            }
        }
        catch
        {
            await group.DisposeAsync();
            throw;
        }

        return group;
    }

    /// <summary>Waits until the host has handed <paramref name="count"/> connections to the protocol (so their deadlines are set).</summary>
    // The protocol arms a connection's deadline as it registers it, so once all are registered the clock can move.
    private static Task UntilServedAsync(TransportTestServer server, int count) =>
        TestTimeouts.UntilAsync(() => server.Services.GetRequiredService<GreetingProtocol>().PendingDeadlines >= count);

    /// <summary>Reads exactly one response (head and Content-Length body) and leaves the connection open.</summary>
    private static async Task<HttpAnswer> ReceiveOneAnswerAsync(ConnectionContext client)
    {
        var bytes = new List<byte>();
        while (true)
        {
            byte[] chunk = await client.ReceiveOnceAsync() ?? throw new EndOfStreamException("closed before a whole response: " + Encoding.ASCII.GetString([.. bytes]));
            bytes.AddRange(chunk);
            string text = Encoding.ASCII.GetString([.. bytes]);
            int headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (headEnd >= 0)
            {
                HttpAnswer head = HttpAnswer.ParseMany(Encoding.ASCII.GetBytes(text[..(headEnd + 4)]), 0)[0];
                int length = int.Parse(head.Header("Content-Length")!, System.Globalization.CultureInfo.InvariantCulture);
                if (bytes.Count >= headEnd + 4 + length)
                {
                    return HttpAnswer.Parse([.. bytes]);
                }
            }
        }
    }

    /// <summary>Moves the fake clock a second at a time until the answer arrives (bounded by the test timeout).</summary>
    private static async Task<byte[]> AdvanceUntilAnsweredAsync(FakeTimeProvider time, Task<byte[]> answer)
    {
        using var deadline = new CancellationTokenSource(TestTimeouts.Default);
        while (!answer.IsCompleted)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await Task.WhenAny(answer, Task.Delay(20, deadline.Token));
        }

        return await answer;
    }
}

/// <summary>Many client connections, disposed together.</summary>
internal sealed class ClientGroup : IAsyncDisposable
{
    public List<ConnectionContext> Clients { get; } = [];

    public async ValueTask DisposeAsync() => await Task.WhenAll(Clients.Select(c => c.DisposeAsync().AsTask()));
}

/// <summary>A parsed HTTP/1.x response, for assertions.</summary>
internal sealed record HttpAnswer(string StatusLine, IReadOnlyDictionary<string, string> Headers, string Body)
{
    public string? Header(string name) => Headers.TryGetValue(name, out string? value) ? value : null;

    public static HttpAnswer Parse(byte[] bytes)
    {
        List<HttpAnswer> all = ParseMany(bytes);
        return all.Count == 1 ? all[0] : throw new InvalidDataException($"expected one response, got {all.Count}: {Encoding.UTF8.GetString(bytes)}");
    }

    /// <summary>Splits several responses; <paramref name="headResponses"/> are the indexes of answers to HEAD (no body).</summary>
    public static List<HttpAnswer> ParseMany(byte[] bytes, params int[] headResponses)
    {
        var answers = new List<HttpAnswer>();
        string text = Encoding.UTF8.GetString(bytes);
        int offset = 0;
        while (offset < text.Length)
        {
            int headEnd = text.IndexOf("\r\n\r\n", offset, StringComparison.Ordinal);
            if (headEnd < 0)
            {
                throw new InvalidDataException("incomplete response head: " + text[offset..]);
            }

            string[] lines = text[offset..headEnd].Split("\r\n");
            var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (string line in lines.Skip(1))
            {
                int colon = line.IndexOf(':', StringComparison.Ordinal);
                headers[line[..colon]] = line[(colon + 1)..].Trim();
            }

            int bodyStart = headEnd + 4;
            int length = headers.TryGetValue("Content-Length", out string? cl) ? int.Parse(cl, System.Globalization.CultureInfo.InvariantCulture) : text.Length - bodyStart;
            string body = headResponses.Contains(answers.Count) ? "" : text.Substring(bodyStart, length);

            answers.Add(new HttpAnswer(lines[0], headers, body));
            offset = bodyStart + body.Length;
        }

        return answers;
    }
}
