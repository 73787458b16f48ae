using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.AspNetCore.Hosting;
using Transport.Memory;
using KestrelSocketTransportFactory = Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets.SocketTransportFactory;

namespace Transport.AspNetCore.Tests;

/// <summary>
/// A minimal API on Kestrel's HTTP stack over each of our stream transports, after <c>UseTransport()</c>: what an
/// ASP.NET Core user relies on, from the first GET to a graceful shutdown.
/// </summary>
public sealed class KestrelOnTransportTests
{
    public const string Page =
        "<b>You Connected to the Server!</b></br></br>Brought to you by: <a href=\"austingwalters.com\">Austin Walters!</a>";

    public static IEnumerable<object[]> Transports => TestTransports.Streams;

    public static IEnumerable<object[]> TransportsAndVersions =>
        TestTransports.Streams.SelectMany(t => new[] { new[] { t[0], (object)false }, new[] { t[0], (object)true } });

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Get_ReturnsThePage_OverHttp11(TestTransport transport)
    {
        await using TestApp app = await TestApp.StartAsync(transport, MapApi);
        using HttpClient client = app.CreateClient();

        using HttpResponseMessage response = await client.GetAsync("/").DefaultTimeout();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpVersion.Version11, response.Version);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(Page, await response.Content.ReadAsStringAsync().DefaultTimeout());
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Get_WithHttp2PriorKnowledge_IsServedOverHttp2(TestTransport transport)
    {
        await using TestApp app = await TestApp.StartAsync(transport, MapApi, HttpProtocols.Http2);
        using HttpClient client = app.CreateClient(http2: true);

        using HttpResponseMessage response = await client.GetAsync("/").DefaultTimeout();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal(Page, await response.Content.ReadAsStringAsync().DefaultTimeout());
    }

    [Theory]
    [MemberData(nameof(TransportsAndVersions))]
    public async Task Upload_ThreeMebibytes_IsEchoedBackByteForByte(TestTransport transport, bool http2)
    {
        await using TestApp app = await TestApp.StartAsync(transport, MapApi, http2 ? HttpProtocols.Http2 : HttpProtocols.Http1);
        using HttpClient client = app.CreateClient(http2);
        byte[] payload = ConnectionTestExtensions.RandomBytes(3 * 1024 * 1024);

        using HttpResponseMessage response = await client.PostAsync("/echo", new ByteArrayContent(payload)).DefaultTimeout();
        byte[] echoed = await response.Content.ReadAsByteArrayAsync().DefaultTimeout();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(http2 ? HttpVersion.Version20 : HttpVersion.Version11, response.Version);
        Assert.Equal(payload.Length, echoed.Length);
        Assert.True(payload.AsSpan().SequenceEqual(echoed), "the echoed body differs from the upload");
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task HundredConcurrentKeepAliveClients_EachKeepsItsOwnConnection(TestTransport transport)
    {
        await using TestApp app = await TestApp.StartAsync(transport, MapApi);
        HttpClient[] clients = [.. Enumerable.Range(0, 100).Select(_ => app.CreateClient())];
        try
        {
            string[][] ids = await Task.WhenAll(clients.Select(async client =>
            {
                var seen = new string[5];
                for (int i = 0; i < seen.Length; i++)
                {
                    seen[i] = await client.GetStringAsync("/connection").DefaultTimeout();
                }

                return seen;
            }));

            // Keep-alive: each client's requests shared one connection; concurrency: a hundred of them.
            Assert.All(ids, seen => Assert.Single(seen.Distinct()));
            Assert.Equal(100, ids.Select(seen => seen[0]).Distinct().Count());
        }
        finally
        {
            foreach (HttpClient client in clients)
            {
                client.Dispose();
            }
        }
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task ClientResetsMidUpload_TheRequestFails_AndTheServerCarriesOn(TestTransport transport)
    {
        var uploading = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var outcome = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using TestApp app = await TestApp.StartAsync(transport, web =>
        {
            MapApi(web);
            web.MapPost("/sink", async (HttpContext context) =>
            {
                try
                {
                    byte[] buffer = new byte[64 * 1024];
                    while (await context.Request.Body.ReadAsync(buffer) > 0)
                    {
                        uploading.TrySetResult();
                    }

                    outcome.TrySetResult(null);
                }
                catch (Exception ex)
                {
                    outcome.TrySetResult(ex);
                }
            });
        });
        byte[] head = Encoding.ASCII.GetBytes("POST /sink HTTP/1.1\r\nHost: test\r\nContent-Length: 3145728\r\n\r\n");
        byte[] part = ConnectionTestExtensions.RandomBytes(256 * 1024);

        await using (RawClient raw = await RawClient.ConnectAsync(app))
        {
            await raw.SendAsync(head);
            await raw.SendAsync(part);
            await uploading.Task.DefaultTimeout();
            raw.Reset();
        }

        Exception? failure = await outcome.Task.DefaultTimeout();
        Assert.NotNull(failure);
        using HttpClient client = app.CreateClient();
        Assert.Equal(Page, await client.GetStringAsync("/").DefaultTimeout());

        // Ours only: Kestrel itself logs RequestBodyDrainBodyReaderInvalidState at Error here, on its own transport too.
        Assert.DoesNotContain(app.Logs.Entries, e => e.Level >= LogLevel.Error && e.Category.StartsWith("Transport", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task GracefulShutdown_TheRequestInFlightCompletes_ThenNothingListens(TestTransport transport)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using TestApp app = await TestApp.StartAsync(transport, web =>
        {
            MapApi(web);
            web.MapGet("/slow", async () =>
            {
                started.TrySetResult();
                await release.Task;
                return "finished";
            });
        });
        using HttpClient client = app.CreateClient();

        Task<HttpResponseMessage> inFlight = client.GetAsync("/slow");
        await started.Task.DefaultTimeout();
        Task stopping = app.App.StopAsync();
        release.TrySetResult();

        using HttpResponseMessage response = await inFlight.DefaultTimeout();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("finished", await response.Content.ReadAsStringAsync().DefaultTimeout());
        await stopping.DefaultTimeout();
        Assert.DoesNotContain(app.Logs.Entries, e => e.Level >= LogLevel.Warning);
        await Assert.ThrowsAnyAsync<Exception>(async () => await RawClient.ConnectAsync(app));
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Https_NegotiatesHttp2WithAlpn_AndServesThePage(TestTransport transport)
    {
        using X509Certificate2 certificate = CreateSelfSignedCertificate();
        await using TestApp app = await TestApp.StartAsync(transport, MapApi, HttpProtocols.Http1AndHttp2, o => o.UseHttps(certificate));
        using HttpClient client = app.CreateClient(scheme: "https", configure: handler =>
            handler.SslOptions.RemoteCertificateValidationCallback = (_, presented, _, _) =>
                presented is not null && presented.GetCertHashString() == certificate.GetCertHashString());
        client.DefaultRequestVersion = HttpVersion.Version20;

        using HttpResponseMessage response = await client.GetAsync("/").DefaultTimeout();

        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal(Page, await response.Content.ReadAsStringAsync().DefaultTimeout());
    }

    [Fact]
    public async Task UseTransport_OursBindsTcpAndUnix_KestrelsKeepsOnlyWhatOursCannot()
    {
        await using TestApp app = await TestApp.StartAsync(TestTransport.Tcp, MapApi);

        // Kestrel's rule: the last registered factory whose CanBind accepts the endpoint binds it.
        IConnectionListenerFactory[] factories = [.. app.App.Services.GetServices<IConnectionListenerFactory>()];
        Type Binder(EndPoint endpoint) => factories.Reverse()
            .First(f => (f as IConnectionListenerFactorySelector)?.CanBind(endpoint) ?? true).GetType();
        Assert.Equal(typeof(Transport.Sockets.SocketTransportFactory), Binder(new IPEndPoint(IPAddress.Loopback, 0)));
        Assert.Equal(typeof(Transport.Sockets.SocketTransportFactory), Binder(new UnixDomainSocketEndPoint("/tmp/x.sock")));
        Assert.Equal(typeof(MemoryTransportFactory), Binder(new MemoryEndPoint("x")));
        Assert.Equal(typeof(KestrelSocketTransportFactory), Binder(new FileHandleEndPoint(3, FileHandleType.Tcp)));

        using (HttpClient client = app.CreateClient())
        {
            Assert.Equal(Page, await client.GetStringAsync("/").DefaultTimeout());
        }

        // The client's close reached Kestrel through our socket transport, which logs the peer's FIN.
        await app.Logs.WaitForEventAsync(LogEvents.Sockets.PeerClosed, category: LogEvents.Sockets.Category);
    }

    [Fact]
    public async Task EndpointsThatBlock_DoNotStallOtherRequests_UnderUseTransportsDefaults()
    {
        // More blocked requests than the socket transport has I/O threads: by default Kestrel and the endpoints run on
        // the thread pool, so each one holds a pool thread, never the I/O thread that serves other connections.
        int blockedCount = Environment.ProcessorCount + 2;
        using var release = new ManualResetEventSlim();
        using var blocked = new CountdownEvent(blockedCount);
        await using TestApp app = await TestApp.StartAsync(TestTransport.Tcp, web =>
        {
            web.MapGet("/block", () =>
            {
                blocked.Signal();
                release.Wait();
                return "released";
            });
            MapApi(web);
        });

        // Keep-alive connections, one per client, each with a request served already: the next request on each arrives
        // while Kestrel waits for it, so it is received, and under inline scheduling handled, on that connection's I/O
        // thread. Connections are spread over the threads in turn, so the blocking ones cover them all.
        HttpClient[] clients = [.. Enumerable.Range(0, blockedCount + 1).Select(_ => app.CreateClient())];
        try
        {
            foreach (HttpClient c in clients)
            {
                Assert.Equal(Page, await c.GetStringAsync("/").DefaultTimeout());
            }

            Task<string>[] waiting = [.. clients.Skip(1).Select(c => c.GetStringAsync("/block"))];
            Assert.True(await Task.Run(() => blocked.Wait(TestTimeouts.Default)), "the blocking requests did not all arrive");

            Assert.Equal(Page, await clients[0].GetStringAsync("/").DefaultTimeout());

            release.Set();
            Assert.All(await Task.WhenAll(waiting).DefaultTimeout(), body => Assert.Equal("released", body));
        }
        finally
        {
            release.Set();
            foreach (HttpClient c in clients)
            {
                c.Dispose();
            }
        }
    }

    [Fact]
    public async Task ListenHandle_AnInheritedListeningSocket_IsStillServed()
    {
        // What systemd socket activation hands a process: a listening socket by descriptor, which only Kestrel's own
        // transport binds (FileHandleEndPoint).
        var listening = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listening.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listening.Listen();
        int port = ((IPEndPoint)listening.LocalEndPoint!).Port;
        ulong descriptor = (ulong)listening.SafeHandle.DangerousGetHandle();

        // Kestrel owns the descriptor from here and closes it; this object must not close it a second time.
        listening.SafeHandle.SetHandleAsInvalid();
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseTransport().ConfigureKestrel(k => k.ListenHandle(descriptor));
        await using WebApplication web = builder.Build();
        MapApi(web);
        await web.StartAsync().DefaultTimeout();

        using var client = new HttpClient();
        Assert.Equal(Page, await client.GetStringAsync($"http://127.0.0.1:{port}/").DefaultTimeout());
        await web.StopAsync().DefaultTimeout();
    }

    private static X509Certificate2 CreateSelfSignedCertificate()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        names.AddIpAddress(IPAddress.IPv6Loopback);
        request.CertificateExtensions.Add(names.Build());
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
    }

    /// <summary>The same minimal API as the benchmark's Kestrel peer, and what the tests need beside it.</summary>
    internal static void MapApi(WebApplication app)
    {
        app.MapGet("/", () => Results.Content(Page, "text/html"));
        app.MapPost("/echo", async (HttpContext context) =>
        {
            // The whole upload first: a client that sends all before it reads (HttpClient does) would deadlock a
            // streaming echo once both directions' flow-control windows are full, on any transport.
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body, context.RequestAborted);
            context.Response.ContentType = "application/octet-stream";
            context.Response.ContentLength = body.Length;
            await context.Response.Body.WriteAsync(body.GetBuffer().AsMemory(0, (int)body.Length), context.RequestAborted);
        });
        app.MapGet("/connection", (HttpContext context) => context.Connection.Id);
    }

    /// <summary>A client below HTTP: writes raw bytes, and resets the connection (RST on TCP, abort on memory).</summary>
    private sealed class RawClient : IAsyncDisposable
    {
        private readonly Socket? _socket;
        private readonly ConnectionContext? _memory;

        private RawClient(Socket? socket, ConnectionContext? memory)
        {
            _socket = socket;
            _memory = memory;
        }

        public static async Task<RawClient> ConnectAsync(TestApp app)
        {
            EndPoint endpoint = TransportUrl.ParseConnectEndPoint(app.ClientUrl);
            if (endpoint is MemoryEndPoint)
            {
                var memory = app.App.Services.GetRequiredService<MemoryTransportFactory>();
                return new RawClient(null, await memory.ConnectAsync(endpoint).DefaultTimeout());
            }

            var socket = endpoint is UnixDomainSocketEndPoint
                ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
                : new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await socket.ConnectAsync(endpoint).DefaultTimeout();
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            return new RawClient(socket, null);
        }

        public async Task SendAsync(byte[] data)
        {
            if (_memory is not null)
            {
                await _memory.SendAsync(data);
            }
            else
            {
                await _socket!.SendAsync(data).DefaultTimeout();
            }
        }

        public void Reset()
        {
            if (_memory is not null)
            {
                _memory.Abort();
            }
            else
            {
                if (_socket!.AddressFamily != AddressFamily.Unix)
                {
                    // Linger 0: close sends RST instead of FIN.
                    _socket.LingerState = new LingerOption(true, 0);
                }

                _socket.Close();
            }
        }

        public async ValueTask DisposeAsync()
        {
            _socket?.Dispose();
            if (_memory is not null)
            {
                await _memory.DisposeAsync();
            }
        }
    }
}
