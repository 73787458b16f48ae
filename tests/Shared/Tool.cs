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

    public static string RequireOnPath(string name)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
        {
            string candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"'{name}' is not installed; .ci/run installs it (apt-get install -y {name}).");
    }
}
