using System.Globalization;

namespace Transport.Benchmarks;

internal enum LoadMode
{
    PingPong,
    Stream,
    Udp,
}

/// <summary>The command line, parsed and checked.</summary>
internal sealed class BenchmarkSettings
{
    public const int DefaultPingPongConnections = 100;
    public const int DefaultStreamConnections = 16;
    public const int DefaultUdpSockets = 16;
    public const int MaxMessageSize = 64 * 1024;

    public const string Usage =
        """
        usage: Transport.Benchmarks [options]
          --mode pingpong|stream|udp|all  load to run (default: all); udp: 16 sockets, 64 B datagrams, 16 in flight each
          --servers LIST               comma-separated, run in this order; the first is the ratio's base
                                       (default: ours-tcp,ours-unix,kestrel-tcp,kestrel-unix,ours-udp,naive-udp;
                                       also available: raw-tcp, an allocation-free Socket echo to check the client;
                                       udp servers run the udp mode only, the others pingpong and stream)
          --conns N                    client connections (default: 100 for pingpong, 16 for stream)
          --size BYTES                 pingpong message size (default: 32, at most 65536)
          --window BYTES               stream: most unechoed bytes per connection (default: 262144)
          --warmup SECONDS             load before the measurement, per server and mode (default: 3)
          --seconds SECONDS            measured time, per server and mode (default: 5)
          --rounds N                   repeat every server and mode N times, interleaved (default: 1)
        exit status: 0 ok, 1 an echoed byte mismatched, 2 bad arguments or a failed run
        """;

    public static readonly string[] DefaultServers = ["ours-tcp", "ours-unix", "kestrel-tcp", "kestrel-unix", "ours-udp", "naive-udp"];

    public IReadOnlyList<LoadMode> Modes { get; private set; } = [LoadMode.PingPong, LoadMode.Stream, LoadMode.Udp];

    public IReadOnlyList<string> Servers { get; private set; } = DefaultServers;

    public int? Connections { get; private set; }

    public int MessageSize { get; private set; } = 32;

    public int Window { get; private set; } = 256 * 1024;

    public double WarmupSeconds { get; private set; } = 3;

    public double MeasureSeconds { get; private set; } = 5;

    public int Rounds { get; private set; } = 1;

    public int ConnectionsFor(LoadMode mode) =>
        Connections ?? mode switch
        {
            LoadMode.PingPong => DefaultPingPongConnections,
            LoadMode.Udp => DefaultUdpSockets,
            _ => DefaultStreamConnections,
        };

    /// <summary>UDP servers run the UDP load only; stream servers run pingpong and stream.</summary>
    public static bool Applies(string server, LoadMode mode) => server.EndsWith("-udp", StringComparison.Ordinal) == (mode == LoadMode.Udp);

    /// <summary>Parses <c>--name value</c> and <c>--name=value</c>; returns null and an error on bad input.</summary>
    public static BenchmarkSettings? Parse(string[] args, out string? error)
    {
        var settings = new BenchmarkSettings();
        error = null;
        for (int i = 0; i < args.Length; i++)
        {
            string name = args[i];
            string? value;
            int equals = name.IndexOf('=', StringComparison.Ordinal);
            if (equals > 0)
            {
                value = name[(equals + 1)..];
                name = name[..equals];
            }
            else if (name is "--help" or "-h")
            {
                error = "";
                return null;
            }
            else
            {
                value = i + 1 < args.Length ? args[++i] : null;
            }

            if (value is null)
            {
                error = $"{name} needs a value";
                return null;
            }

            error = settings.Set(name, value);
            if (error is not null)
            {
                return null;
            }
        }

        if (settings.Window < SocketLoad.WriteSize)
        {
            error = $"--window must be at least {SocketLoad.WriteSize} bytes (one write)";
            return null;
        }

        return settings;
    }

    private string? Set(string name, string value)
    {
        switch (name)
        {
            case "--mode":
                Modes = value switch
                {
                    "pingpong" => [LoadMode.PingPong],
                    "stream" => [LoadMode.Stream],
                    "udp" => [LoadMode.Udp],
                    "all" => [LoadMode.PingPong, LoadMode.Stream, LoadMode.Udp],
                    _ => [],
                };
                return Modes.Count == 0 ? $"--mode '{value}': expected pingpong, stream, udp or all" : null;
            case "--servers":
                string[] servers = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                string? unknown = servers.FirstOrDefault(s => !EchoServers.Names.Contains(s, StringComparer.Ordinal));
                if (servers.Length == 0 || unknown is not null)
                {
                    return $"--servers '{value}': unknown server '{unknown}'; known: {string.Join(", ", EchoServers.Names)}";
                }

                Servers = servers;
                return null;
            case "--conns":
                return ParseInt(name, value, 1, 10_000, out int conns) ?? SetAndSucceed(() => Connections = conns);
            case "--size":
                return ParseInt(name, value, 1, MaxMessageSize, out int size) ?? SetAndSucceed(() => MessageSize = size);
            case "--window":
                return ParseInt(name, value, 1, 64 * 1024 * 1024, out int window) ?? SetAndSucceed(() => Window = window);
            case "--rounds":
                return ParseInt(name, value, 1, 100, out int rounds) ?? SetAndSucceed(() => Rounds = rounds);
            case "--seconds":
                return ParseSeconds(name, value, 0.1, out double seconds) ?? SetAndSucceed(() => MeasureSeconds = seconds);
            case "--warmup":
                return ParseSeconds(name, value, 0, out double warmup) ?? SetAndSucceed(() => WarmupSeconds = warmup);
            default:
                return $"unknown option '{name}'";
        }
    }

    private static string? SetAndSucceed(Action set)
    {
        set();
        return null;
    }

    private static string? ParseInt(string name, string value, int min, int max, out int result) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out result) && result >= min && result <= max
            ? null
            : $"{name} '{value}': expected a whole number from {min} to {max}";

    private static string? ParseSeconds(string name, string value, double min, out double result) =>
        double.TryParse(value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out result) && result >= min && result <= 3600
            ? null
            : $"{name} '{value}': expected seconds from {min.ToString(CultureInfo.InvariantCulture)} to 3600";
}
