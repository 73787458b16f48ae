using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime;
using System.Runtime.InteropServices;

namespace Transport.Benchmarks;

/// <summary>
/// Managed heap per idle connection: each server in turn gets N connections that echo one byte each and then
/// stay open and silent; the heap's growth after a full collection, per connection, is what an idle connection
/// holds, client included (the same client socket for every server).
/// A full collection makes this independent of the machine's load: run it while others build.
/// </summary>
internal static class IdleBenchmark
{
    private static readonly CultureInfo s_culture = CultureInfo.InvariantCulture;

    public const string Usage =
        """
        usage: Transport.Benchmarks idle [--conns N] [--servers LIST] [--rounds N]
          --conns N        idle connections per server (default 2000)
          --servers LIST   default: ours-tcp,kestrel-tcp,ours-unix,kestrel-unix
          --rounds N       default 1
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        int conns = 2000;
        int rounds = 1;
        string[] servers = ["ours-tcp", "kestrel-tcp", "ours-unix", "kestrel-unix"];
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--conns":
                    conns = int.Parse(args[i + 1], s_culture);
                    break;
                case "--rounds":
                    rounds = int.Parse(args[i + 1], s_culture);
                    break;
                case "--servers":
                    servers = args[i + 1].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    break;
                default:
                    Console.Error.WriteLine(Usage);
                    return 2;
            }
        }

        if (args.Length % 2 != 0 || servers.Any(s => !EchoServers.Names.Contains(s, StringComparer.Ordinal) || s.EndsWith("-udp", StringComparison.Ordinal)))
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }

        var heap = servers.ToDictionary(s => s, _ => new List<double>());
        var allocated = servers.ToDictionary(s => s, _ => new List<double>());
        for (int round = 1; round <= rounds; round++)
        {
            foreach (string server in servers)
            {
                (double heapPerConn, double allocPerConn) = await RunOneAsync(server, conns);
                heap[server].Add(heapPerConn);
                allocated[server].Add(allocPerConn);
                Console.Error.WriteLine(string.Create(s_culture, $"[{round}/{rounds}] {server,-12} heap +{heapPerConn:N0} B/conn, allocated {allocPerConn:N0} B/conn"));
            }
        }

        Console.WriteLine();
        Console.WriteLine("| server | idle conns | heap B/conn (client incl.) | ratio | allocated B/conn (accept + 1 echo, client incl.) |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        double first = Median(heap[servers[0]]);
        foreach (string server in servers)
        {
            double h = Median(heap[server]);
            Console.WriteLine(string.Create(s_culture, $"| {server} | {conns} | {h:N0} | {h / first:F2} | {Median(allocated[server]):N0} |"));
        }

        Console.WriteLine();
        Console.WriteLine(string.Create(s_culture,
            $"command: dotnet run -c Release --project benchmarks/Transport.Benchmarks -- idle {string.Join(' ', args)}"));
        Console.WriteLine(string.Create(s_culture,
            $"heap: GC.GetTotalMemory(true) after N connections each echoed 1 B and went quiet, minus before, / N; {rounds} round(s), medians; {RuntimeInformation.FrameworkDescription}, {(GCSettings.IsServerGC ? "server" : "workstation")} GC"));
        return 0;
    }

    private static async Task<(double Heap, double Allocated)> RunOneAsync(string server, int count)
    {
        IEchoServer echo = await EchoServers.StartAsync(server);
        var sockets = new Socket[count];
        try
        {
            // Warm up: the first connections create pools, caches and JIT'd code that later ones share.
            await OpenAsync(echo.EndPoint, sockets.AsMemory(0, Math.Min(100, count)));
            await Task.Delay(200);
            foreach (Socket socket in sockets.AsSpan(0, Math.Min(100, count)))
            {
                socket.Dispose();
            }

            await Task.Delay(500);
            Collect();
            long before = GC.GetTotalMemory(forceFullCollection: true);
            long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            await OpenAsync(echo.EndPoint, sockets);

            // Let the server's receives go back to waiting.
            await Task.Delay(500);
            long allocatedAfter = GC.GetTotalAllocatedBytes(precise: true);
            Collect();
            long after = GC.GetTotalMemory(forceFullCollection: true);
            return ((double)(after - before) / count, (double)(allocatedAfter - allocatedBefore) / count);
        }
        finally
        {
            foreach (Socket? socket in sockets)
            {
                socket?.Dispose();
            }

            await echo.DisposeAsync();
        }
    }

    private static async Task OpenAsync(EndPoint endPoint, Memory<Socket> sockets)
    {
        byte[] one = [1];
        byte[] back = new byte[1];
        for (int i = 0; i < sockets.Length; i++)
        {
            var socket = endPoint is UnixDomainSocketEndPoint
                ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
                : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            sockets.Span[i] = socket;
            await socket.ConnectAsync(endPoint);
            await socket.SendAsync(one);
            if (await socket.ReceiveAsync(back) != 1)
            {
                throw new InvalidOperationException("the server closed an idle connection");
            }
        }
    }

    private static void Collect()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    private static double Median(List<double> values)
    {
        double[] sorted = [.. values.Order()];
        return sorted.Length == 0 ? double.NaN : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
