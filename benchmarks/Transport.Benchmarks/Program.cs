using System.Globalization;
using System.Runtime;
using System.Runtime.InteropServices;
using System.Text;
using Transport.Benchmarks;

// Echo load benchmark: each server in turn is started in this process on a fresh address, loaded by the
// in-process client, measured, and stopped. Progress goes to stderr, the markdown table to stdout.
// `tls` as the first argument runs the TLS comparison with Kestrel's UseHttps instead (TlsBenchmark.cs);
// `idle` measures the managed heap an idle connection holds (IdleBenchmark.cs).
if (args is ["tls", ..])
{
    return await TlsBenchmark.RunAsync(args[1..]);
}

if (args is ["idle", ..])
{
    return await IdleBenchmark.RunAsync(args[1..]);
}

BenchmarkSettings? settings = BenchmarkSettings.Parse(args, out string? error);
if (settings is null)
{
    if (!string.IsNullOrEmpty(error))
    {
        Console.Error.WriteLine($"error: {error}");
    }

    Console.Error.WriteLine(BenchmarkSettings.Usage);
    return string.IsNullOrEmpty(error) ? 0 : 2;
}

var results = new List<RunResult>();
for (int round = 1; round <= settings.Rounds; round++)
{
    foreach (LoadMode mode in settings.Modes)
    {
        foreach (string server in settings.Servers.Where(s => BenchmarkSettings.Applies(s, mode)))
        {
            RunResult result = await RunOneAsync(server, mode, settings);
            results.Add(result);
            Console.Error.WriteLine(Report.Progress(round, settings.Rounds, result));
        }
    }
}

Console.WriteLine();
Console.WriteLine(Report.Table(results, settings));
Console.WriteLine(Report.Footer(args, settings));

if (results.Any(r => r.Mismatches > 0))
{
    Console.Error.WriteLine("FAILED: a server echoed bytes that were not sent (see the errors above).");
    return 1;
}

return results.Any(r => r.Errors > 0) ? 2 : 0;

static async Task<RunResult> RunOneAsync(string server, LoadMode mode, BenchmarkSettings settings)
{
    // Start every run from the same heap state; this is outside the measured window.
    GC.Collect();
    GC.WaitForPendingFinalizers();
    GC.Collect();

    IEchoServer echoServer;
    try
    {
        echoServer = await EchoServers.StartAsync(server);
    }
    catch (Exception ex)
    {
        return RunResult.Failed(server, mode, settings.ConnectionsFor(mode), $"the server did not start: {ex.Message}");
    }

    await using (echoServer)
    {
        try
        {
            return mode == LoadMode.Udp
                ? await UdpLoad.RunAsync(server, echoServer.EndPoint, settings)
                : await SocketLoad.RunAsync(server, echoServer.EndPoint, mode, settings);
        }
        catch (Exception ex)
        {
            return RunResult.Failed(server, mode, settings.ConnectionsFor(mode), $"{ex.GetType().Name}: {ex.Message}");
        }
    }
}

internal static class Report
{
    private static readonly CultureInfo s_culture = CultureInfo.InvariantCulture;

    public static string Progress(int round, int rounds, RunResult r)
    {
        string line = string.Create(s_culture,
            $"[{round}/{rounds}] {r.Server,-12} {ModeName(r.Mode),-8} {FormatRate(r)} | {FormatAlloc(r.AllocatedPerMessage)} B/msg ({r.AllocatedBytes:N0} B in all) | gen0 {r.Gen0Collections} | {r.Messages:N0} msgs in {r.Seconds:F2} s");
        return r.FirstError is null
            ? line
            : string.Create(s_culture, $"{line} | {r.Errors} connection(s) failed, {r.Mismatches} mismatch(es); first: {r.FirstError}");
    }

    public static string Table(List<RunResult> results, BenchmarkSettings settings)
    {
        bool rounds = settings.Rounds > 1;
        var table = new StringBuilder();
        table.Append("| server | mode | conns | rate | ratio | alloc B/msg | gen0 |");
        table.Append(rounds ? " min-max |" : "").AppendLine(" errors | mismatch |");
        table.Append("|---|---|---:|---:|---:|---:|---:|");
        table.Append(rounds ? "---:|" : "").AppendLine("---:|---:|");
        foreach (LoadMode mode in settings.Modes)
        {
            double baseRate = double.NaN;
            string[] servers = [.. settings.Servers.Where(s => BenchmarkSettings.Applies(s, mode))];
            foreach (string server in servers)
            {
                RunResult[] runs = [.. results.Where(r => r.Mode == mode && r.Server == server)];
                double[] rates = [.. runs.Select(r => r.Rate).Where(double.IsFinite)];
                double rate = Median(rates);
                if (server == servers[0])
                {
                    baseRate = rate;
                }

                string ratio = double.IsFinite(rate) && baseRate > 0 ? (rate / baseRate).ToString("F2", s_culture) : "-";
                table.Append(string.Create(s_culture,
                    $"| {server} | {ModeName(mode)} | {runs[0].Connections} | {FormatRate(mode, rate)} | {ratio} | {FormatAlloc(Median([.. runs.Select(r => r.AllocatedPerMessage).Where(double.IsFinite)]))} | {Median([.. runs.Select(r => (double)r.Gen0Collections)]):0.#} |"));
                if (rounds)
                {
                    table.Append(rates.Length == 0 ? " - |" : string.Create(s_culture, $" {FormatNumber(mode, rates.Min())}-{FormatNumber(mode, rates.Max())} |"));
                }

                table.AppendLine(string.Create(s_culture, $" {runs.Sum(r => r.Errors)} | {runs.Sum(r => r.Mismatches)} |"));
            }
        }

        return table.ToString();
    }

    public static string Footer(string[] args, BenchmarkSettings settings)
    {
        string arguments = args.Length == 0 ? "" : " -- " + string.Join(' ', args.Select(Quote));
        return string.Create(s_culture,
            $"""

            command: dotnet run -c Release --project benchmarks/Transport.Benchmarks{arguments}
            load: pingpong {settings.MessageSize} B messages, one in flight per connection; stream {SocketLoad.WriteSize} B writes, at most {settings.Window} B unechoed per connection; udp {UdpLoad.DatagramSize} B datagrams, {UdpLoad.Window} in flight per socket; every echoed byte checked
            time: {settings.WarmupSeconds} s warm-up + {settings.MeasureSeconds} s measured per server and mode, {settings.Rounds} round(s){(settings.Rounds > 1 ? " interleaved, rate and alloc are medians" : "")}
            alloc B/msg: GC.GetTotalAllocatedBytes(precise) over the measured window / messages (round trips, or 4 KiB writes); the client allocates nothing then, so this is the server's
            machine: {RuntimeInformation.FrameworkDescription}, {RuntimeInformation.OSDescription}, {Environment.ProcessorCount} CPUs, {(GCSettings.IsServerGC ? "server" : "workstation")} GC, client and servers in one process
            """);
    }

    private static string Quote(string arg) => arg.Length > 0 && !arg.Any(c => char.IsWhiteSpace(c) || c is '"' or '\'') ? arg : "'" + arg + "'";

    private static string ModeName(LoadMode mode) => mode switch
    {
        LoadMode.PingPong => "pingpong",
        LoadMode.Udp => "udp",
        _ => "stream",
    };

    private static string FormatRate(RunResult r) => FormatRate(r.Mode, r.Rate);

    private static string FormatRate(LoadMode mode, double rate) =>
        !double.IsFinite(rate) ? "-" : FormatNumber(mode, rate) + mode switch
        {
            LoadMode.PingPong => " rt/s",
            LoadMode.Udp => " dgram/s",
            _ => " MiB/s",
        };

    private static string FormatNumber(LoadMode mode, double rate) =>
        rate.ToString(mode == LoadMode.Stream ? "N1" : "N0", s_culture);

    private static string FormatAlloc(double bytes) => double.IsFinite(bytes) ? bytes.ToString("N1", s_culture) : "-";

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
}
