using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Transport.Hosting;
using Transport.Protocols.Echo;

namespace Transport.Benchmarks;

/// <summary>
/// TLS side by side: our TLS middleware with the echo plugin against Kestrel's <c>UseHttps</c> with the same echo
/// handler, on the same certificate, both driven by the same <see cref="SslStream"/> client in this process.
/// Loads: pingpong (round trips/s), stream (echoed MiB/s), handshake (a new TCP connection and TLS session per
/// one-byte echo, sessions/s) and idle (bytes per open, idle TLS connection).
/// </summary>
internal static class TlsBenchmark
{
    public const string Usage =
        """
        usage: Transport.Benchmarks tls [options]
          --mode pingpong,stream,handshake,idle   loads to run (default: all four)
          --conns N         pingpong connections (default 100); stream 16; handshake workers 16; idle 1000
          --idle-conns N    idle connections (default 1000)
          --warmup SECONDS  load before the measurement (default 2)
          --seconds SECONDS measured time (default 5)
          --rounds N        repeat every server and mode, interleaved (default 3)
          --servers LIST    ours-tls,kestrel-tls (default: both; one alone is for profiling)
        """;

    private const int MessageSize = 32;
    private const int WriteSize = 4096;
    private const int Window = 256 * 1024;
    private static readonly string[] s_servers = ["ours-tls", "kestrel-tls"];
    private static readonly CultureInfo s_culture = CultureInfo.InvariantCulture;

    public static async Task<int> RunAsync(string[] args)
    {
        var modes = new List<string> { "pingpong", "stream", "handshake", "idle" };
        int? conns = null;
        int idleConns = 1000;
        double warmup = 2;
        double seconds = 5;
        int rounds = 3;
        string[] servers = s_servers;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            string value = args[i + 1];
            switch (args[i])
            {
                case "--mode":
                    modes = [.. value.Split(',', StringSplitOptions.RemoveEmptyEntries)];
                    break;
                case "--conns":
                    conns = int.Parse(value, s_culture);
                    break;
                case "--idle-conns":
                    idleConns = int.Parse(value, s_culture);
                    break;
                case "--warmup":
                    warmup = double.Parse(value, s_culture);
                    break;
                case "--seconds":
                    seconds = double.Parse(value, s_culture);
                    break;
                case "--rounds":
                    rounds = int.Parse(value, s_culture);
                    break;
                case "--servers":
                    servers = value.Split(',', StringSplitOptions.RemoveEmptyEntries);
                    break;
                default:
                    Console.Error.WriteLine(Usage);
                    return 2;
            }
        }

        if (args.Length % 2 != 0 || modes.Any(m => m is not ("pingpong" or "stream" or "handshake" or "idle"))
            || servers.Length == 0 || servers.Any(s => !s_servers.Contains(s)))
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }

        using var certificate = CreateCertificate();
        string directory = Directory.CreateTempSubdirectory("transport-tls-bench-").FullName;
        try
        {
            string certPath = Path.Combine(directory, "server.pem");
            string keyPath = Path.Combine(directory, "server.key");
            await File.WriteAllTextAsync(certPath, certificate.ExportCertificatePem());
            using (ECDsa key = certificate.GetECDsaPrivateKey()!)
            {
                await File.WriteAllTextAsync(keyPath, key.ExportPkcs8PrivateKeyPem());
            }

            var results = new List<(string Server, string Mode, double Value, string? Error)>();
            for (int round = 1; round <= rounds; round++)
            {
                foreach (string mode in modes)
                {
                    foreach (string server in servers)
                    {
                        GC.Collect();
                        GC.WaitForPendingFinalizers();
                        GC.Collect();
                        (double value, string? error) = await RunOneAsync(server, mode, certPath, keyPath, certificate, conns, idleConns, warmup, seconds);
                        results.Add((server, mode, value, error));
                        Console.Error.WriteLine(string.Create(s_culture, $"[{round}/{rounds}] {server,-12} {mode,-10} {value:N1} {Unit(mode)}{(error is null ? "" : " | " + error)}"));
                    }
                }
            }

            Console.WriteLine();
            Console.WriteLine(Table(results, modes));
            Console.WriteLine(string.Create(s_culture,
                $"""
                command: dotnet run -c Release --project benchmarks/Transport.Benchmarks -- tls {string.Join(' ', args)}
                certificate: ECDSA P-256, self-signed, the same for both; client: SslStream (TLS 1.3, no resumption), RemoteCertificateValidationCallback by thumbprint
                load: pingpong {MessageSize} B, {conns ?? 100} conns; stream {WriteSize} B writes, {Window} B window, {conns ?? 16} conns; handshake: {conns ?? 16} workers, each a new connection + handshake + 1 B echo + close; idle: {idleConns} conns after one 1 B echo each, managed heap (GC.GetTotalMemory(true)) and RSS growth / conns, client included (the same client for both)
                time: {warmup} s warm-up + {seconds} s measured per server and mode, {rounds} round(s) interleaved, medians (min-max)
                machine: {RuntimeInformation.FrameworkDescription}, {RuntimeInformation.OSDescription}, {Environment.ProcessorCount} CPUs, {(GCSettings.IsServerGC ? "server" : "workstation")} GC, client and servers in one process
                """));
            return results.Any(r => r.Error is not null) ? 2 : 0;
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static string Unit(string mode) => mode switch
    {
        "pingpong" => "rt/s",
        "stream" => "MiB/s",
        "handshake" => "handshakes/s",
        _ => "B/conn (heap)",
    };

    private static async Task<(double Value, string? Error)> RunOneAsync(string server, string mode, string certPath, string keyPath,
        X509Certificate2 certificate, int? conns, int idleConns, double warmup, double seconds)
    {
        await using IEchoServer echo = server == "ours-tls"
            ? await TransportTlsEchoServer.StartAsync(certPath, keyPath)
            : await KestrelTlsEchoServer.StartAsync(certificate);
        var endPoint = (IPEndPoint)echo.EndPoint;
        string thumbprint = certificate.Thumbprint;
        try
        {
            return mode switch
            {
                "pingpong" => (await PingPongAsync(endPoint, thumbprint, conns ?? 100, warmup, seconds), null),
                "stream" => (await StreamAsync(endPoint, thumbprint, conns ?? 16, warmup, seconds), null),
                "handshake" => (await HandshakesAsync(endPoint, thumbprint, conns ?? 16, warmup, seconds), null),
                _ => (await IdleAsync(endPoint, thumbprint, idleConns), null),
            };
        }
        catch (Exception ex)
        {
            return (double.NaN, $"{ex.GetType().Name}: {ex.Message}");
        }
    }

    private static async Task<SslStream> ConnectAsync(IPEndPoint endPoint, string thumbprint, CancellationToken cancellationToken = default)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endPoint, cancellationToken);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var tls = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
        try
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                AllowTlsResume = false,
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && cert.GetCertHashString() == thumbprint,
            }, cancellationToken);
            return tls;
        }
        catch
        {
            await tls.DisposeAsync();
            throw;
        }
    }

    private static async Task<double> PingPongAsync(IPEndPoint endPoint, string thumbprint, int count, double warmup, double seconds)
    {
        var streams = new SslStream[count];
        for (int i = 0; i < count; i++)
        {
            streams[i] = await ConnectAsync(endPoint, thumbprint);
        }

        long[] counts = new long[count];
        bool stop = false;
        Task[] loops = [.. Enumerable.Range(0, count).Select(i => Task.Run(async () =>
        {
            byte[] message = new byte[MessageSize];
            byte[] received = new byte[MessageSize];
            Random.Shared.NextBytes(message);
            SslStream tls = streams[i];
            while (!Volatile.Read(ref stop))
            {
                message[0]++;
                await tls.WriteAsync(message);
                await tls.ReadExactlyAsync(received);
                if (!received.AsSpan().SequenceEqual(message))
                {
                    throw new InvalidDataException("echo mismatch");
                }

                Volatile.Write(ref counts[i], counts[i] + 1);
            }
        }))];
        double rate = await MeasureAsync(counts, warmup, seconds);
        Volatile.Write(ref stop, true);
        await Task.WhenAll(loops);
        foreach (SslStream tls in streams)
        {
            await tls.DisposeAsync();
        }

        return rate;
    }

    private static async Task<double> StreamAsync(IPEndPoint endPoint, string thumbprint, int count, double warmup, double seconds)
    {
        var streams = new SslStream[count];
        for (int i = 0; i < count; i++)
        {
            streams[i] = await ConnectAsync(endPoint, thumbprint);
        }

        long[] received = new long[count];
        int[] waiting = new int[count];
        SemaphoreSlim[] room = [.. Enumerable.Range(0, count).Select(_ => new SemaphoreSlim(0))];
        bool stop = false;
        byte[] pattern = new byte[Window + WriteSize];
        new Random(7).NextBytes(pattern);
        Task[] loops = [.. Enumerable.Range(0, count).SelectMany(i => new[]
        {
            Task.Run(async () =>
            {
                SslStream tls = streams[i];
                long sent = 0;
                while (!Volatile.Read(ref stop))
                {
                    if (sent - Volatile.Read(ref received[i]) + WriteSize > Window)
                    {
                        Volatile.Write(ref waiting[i], 1);
                        // Check again after announcing the wait: the receiver may have made room just before.
                        if (sent - Volatile.Read(ref received[i]) + WriteSize > Window)
                        {
                            await room[i].WaitAsync(TimeSpan.FromMilliseconds(50));
                        }

                        Volatile.Write(ref waiting[i], 0);
                        continue;
                    }

                    await tls.WriteAsync(pattern.AsMemory((int)(sent % Window), WriteSize));
                    sent += WriteSize;
                }

                await tls.ShutdownAsync();
            }),
            Task.Run(async () =>
            {
                SslStream tls = streams[i];
                byte[] buffer = new byte[64 * 1024];
                long got = 0;
                while (true)
                {
                    int n = await tls.ReadAsync(buffer);
                    if (n == 0)
                    {
                        break;
                    }

                    int offset = (int)(got % Window);
                    int first = Math.Min(n, Window - offset);
                    if (!buffer.AsSpan(0, first).SequenceEqual(pattern.AsSpan(offset, first))
                        || !buffer.AsSpan(first, n - first).SequenceEqual(pattern.AsSpan(0, n - first)))
                    {
                        throw new InvalidDataException("echo mismatch");
                    }

                    got += n;
                    Volatile.Write(ref received[i], got);
                    if (Interlocked.Exchange(ref waiting[i], 0) == 1)
                    {
                        room[i].Release();
                    }
                }
            }),
        })];
        double bytesPerSecond = await MeasureAsync(received, warmup, seconds);
        Volatile.Write(ref stop, true);
        await Task.WhenAll(loops).WaitAsync(TimeSpan.FromSeconds(30));
        foreach (SslStream tls in streams)
        {
            await tls.DisposeAsync();
        }

        return bytesPerSecond / (1024 * 1024);
    }

    private static async Task<double> HandshakesAsync(IPEndPoint endPoint, string thumbprint, int workers, double warmup, double seconds)
    {
        long[] counts = new long[workers];
        bool stop = false;
        Task[] loops = [.. Enumerable.Range(0, workers).Select(i => Task.Run(async () =>
        {
            byte[] one = [42];
            byte[] back = new byte[1];
            while (!Volatile.Read(ref stop))
            {
                SslStream tls = await ConnectAsync(endPoint, thumbprint);
                await using (tls)
                {
                    await tls.WriteAsync(one);
                    await tls.ReadExactlyAsync(back);
                    if (back[0] != 42)
                    {
                        throw new InvalidDataException("echo mismatch");
                    }
                }

                Volatile.Write(ref counts[i], counts[i] + 1);
            }
        }))];
        double rate = await MeasureAsync(counts, warmup, seconds);
        Volatile.Write(ref stop, true);
        await Task.WhenAll(loops);
        return rate;
    }

    /// <summary>Bytes of managed heap per idle TLS connection (client and server in this process), after one echo each.</summary>
    private static async Task<double> IdleAsync(IPEndPoint endPoint, string thumbprint, int count)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        long heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        long rssBefore = Environment.WorkingSet;
        var streams = new SslStream[count];
        byte[] one = [1];
        byte[] back = new byte[1];
        for (int i = 0; i < count; i++)
        {
            streams[i] = await ConnectAsync(endPoint, thumbprint);
            await streams[i].WriteAsync(one);
            await streams[i].ReadExactlyAsync(back);
        }

        // Let the server's reads go back to waiting (a zero-byte read where supported).
        await Task.Delay(500);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        long heapAfter = GC.GetTotalMemory(forceFullCollection: true);
        long rssAfter = Environment.WorkingSet;
        Console.Error.WriteLine(string.Create(s_culture, $"    idle: heap +{(heapAfter - heapBefore) / count:N0} B/conn, RSS +{(rssAfter - rssBefore) / count:N0} B/conn"));
        foreach (SslStream tls in streams)
        {
            await tls.DisposeAsync();
        }

        return (double)(heapAfter - heapBefore) / count;
    }

    private static async Task<double> MeasureAsync(long[] counters, double warmup, double seconds)
    {
        await Task.Delay(TimeSpan.FromSeconds(warmup));
        long before = Sum(counters);
        long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        long start = Stopwatch.GetTimestamp();
        await Task.Delay(TimeSpan.FromSeconds(seconds));
        long after = Sum(counters);
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
        double elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
        // Client and server together; the client is the same for both servers.
        Console.Error.WriteLine(string.Create(s_culture, $"    alloc: {(double)allocated / Math.Max(1, after - before):N0} B per counted unit (client included)"));
        return (after - before) / elapsed;
    }

    private static long Sum(long[] counters)
    {
        long sum = 0;
        for (int i = 0; i < counters.Length; i++)
        {
            sum += Volatile.Read(ref counters[i]);
        }

        return sum;
    }

    private static string Table(List<(string Server, string Mode, double Value, string? Error)> results, List<string> modes)
    {
        var table = new StringBuilder();
        table.AppendLine("| mode | ours-tls | kestrel-tls | ours / kestrel | ours min-max | kestrel min-max |");
        table.AppendLine("|---|---:|---:|---:|---:|---:|");
        foreach (string mode in modes)
        {
            double[] ours = [.. results.Where(r => r.Mode == mode && r.Server == "ours-tls").Select(r => r.Value).Where(double.IsFinite)];
            double[] kestrel = [.. results.Where(r => r.Mode == mode && r.Server == "kestrel-tls").Select(r => r.Value).Where(double.IsFinite)];
            double o = Median(ours);
            double k = Median(kestrel);
            table.AppendLine(string.Create(s_culture,
                $"| {mode} ({Unit(mode)}) | {o:N1} | {k:N1} | {o / k:F2} | {MinMax(ours)} | {MinMax(kestrel)} |"));
        }

        return table.ToString();
    }

    private static string MinMax(double[] values) =>
        values.Length == 0 ? "-" : string.Create(s_culture, $"{values.Min():N0}-{values.Max():N0}");

    private static double Median(double[] values)
    {
        if (values.Length == 0)
        {
            return double.NaN;
        }

        Array.Sort(values);
        int middle = values.Length / 2;
        return values.Length % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
    }

    private static X509Certificate2 CreateCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using X509Certificate2 ephemeral = request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));
        // Through PKCS#12 so that the key is usable by the server on every platform.
        return X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), password: null);
    }
}

/// <summary>Ours: the echo plugin behind the TLS middleware, the certificate from PEM files.</summary>
internal sealed class TransportTlsEchoServer : IEchoServer
{
    private readonly IHost _host;

    private TransportTlsEchoServer(IHost host, EndPoint endPoint)
    {
        _host = host;
        EndPoint = endPoint;
    }

    public EndPoint EndPoint { get; }

    public static async Task<TransportTlsEchoServer> StartAsync(string certPath, string keyPath)
    {
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddSingleton<IHostLifetime, BenchmarkHostLifetime>();
        builder.Services.AddTransport()
            .AddProtocol<EchoProtocol>("echo")
            .Listen("tcp://127.0.0.1:0", "echo", endpoint =>
                endpoint.Tls = new TransportTlsOptions { Certificate = { Path = certPath, KeyPath = keyPath } });
        IHost host = builder.Build();
        try
        {
            await host.StartAsync();
            return new TransportTlsEchoServer(host, host.Services.GetRequiredService<ITransportServer>().Bindings[0].EndPoint);
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _host.StopAsync();
        }
        finally
        {
            _host.Dispose();
        }
    }
}

/// <summary>Kestrel: <c>UseHttps</c> with the same certificate in front of the same echo handler.</summary>
internal sealed class KestrelTlsEchoServer : IEchoServer
{
    private readonly WebApplication _app;

    private KestrelTlsEchoServer(WebApplication app, EndPoint endPoint)
    {
        _app = app;
        EndPoint = endPoint;
    }

    public EndPoint EndPoint { get; }

    public static async Task<KestrelTlsEchoServer> StartAsync(X509Certificate2 certificate)
    {
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Services.AddSingleton<IHostLifetime, BenchmarkHostLifetime>();
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.UseHttps(certificate);
            listen.UseConnectionHandler<KestrelEchoHandler>();
        }));
        WebApplication app = builder.Build();
        try
        {
            await app.StartAsync();
            string address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
            return new KestrelTlsEchoServer(app, new IPEndPoint(IPAddress.Loopback, new Uri(address).Port));
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _app.StopAsync();
        }
        finally
        {
            await _app.DisposeAsync();
        }
    }
}
