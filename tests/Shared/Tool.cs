using System.Diagnostics;

namespace Transport.TestSupport;

/// <summary>Runs an external program to completion with binary standard input and output.</summary>
internal static class Tool
{
    public static async Task<(int ExitCode, byte[] Output, string Error)> RunAsync(string fileName, IEnumerable<string> args, byte[]? input = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(info) ?? throw new InvalidOperationException("could not start " + fileName);
        var output = new MemoryStream();
        Task reading = process.StandardOutput.BaseStream.CopyToAsync(output);
        Task<string> error = process.StandardError.ReadToEndAsync();
        if (input is not null)
        {
            await process.StandardInput.BaseStream.WriteAsync(input).DefaultTimeout();
        }

        process.StandardInput.Close();
        try
        {
            await reading.DefaultTimeout();
            await process.WaitForExitAsync().DefaultTimeout();
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, output.ToArray(), await error.DefaultTimeout());
    }

    /// <summary>Set to 1 (as .ci/run does) to turn a missing program into a failure instead of a skipped test.</summary>
    public const string RequireToolsVariable = "TRANSPORT_REQUIRE_TOOLS";

    // Where the program's name is not its Debian package's.
    private static readonly Dictionary<string, string> DebianPackages = new(StringComparer.Ordinal)
    {
        ["ab"] = "apache2-utils",
        ["redis-cli"] = "redis-tools",
        ["redis-benchmark"] = "redis-tools",
        ["systemd-socket-activate"] = "systemd",
        ["prlimit"] = "util-linux",
        ["ss"] = "iproute2",
    };

    /// <summary>The Debian package that installs <paramref name="name"/>.</summary>
    public static string DebianPackage(string name) => DebianPackages.GetValueOrDefault(name, name);

    public static string? FindOnPath(string name)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    public static string RequireOnPath(string name) =>
        FindOnPath(name) ?? throw new InvalidOperationException(
            $"'{name}' is not on PATH; install it with: apt-get install -y {DebianPackage(name)} (.ci/run does).");

    /// <summary>Why a test that drives <paramref name="tools"/> is skipped here, or null when it runs.</summary>
    public static string? SkipReason(IEnumerable<string> tools)
    {
        if (Environment.GetEnvironmentVariable(RequireToolsVariable) == "1")
        {
            return null;
        }

        string[] missing = [.. tools.Where(t => FindOnPath(t) is null)];
        if (missing.Length == 0)
        {
            return null;
        }

        string packages = string.Join(' ', missing.Select(DebianPackage).Distinct());
        return $"needs {string.Join(", ", missing)} on PATH: apt-get install -y {packages} ({RequireToolsVariable}=1 makes this a failure)";
    }
}
