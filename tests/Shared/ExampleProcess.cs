using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Transport.TestSupport;

/// <summary>Runs one of the repo's example programs the way a user does, from its build output.</summary>
internal sealed class ExampleProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _output = [];
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<(Regex Pattern, TaskCompletionSource<Match> Seen)> _waiters = [];

    private ExampleProcess(Process process)
    {
        _process = process;
    }

    public int ExitCode => _process.ExitCode;

    /// <summary>The process id, e.g. to read its memory from /proc.</summary>
    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public IReadOnlyList<string> Output
    {
        get
        {
            lock (_output)
            {
                return [.. _output];
            }
        }
    }

    public static string RepoRoot
    {
        get
        {
            string? dir = AppContext.BaseDirectory;
            while (dir is not null && !File.Exists(Path.Combine(dir, "Transport.sln")))
            {
                dir = Path.GetDirectoryName(dir);
            }

            return dir ?? throw new InvalidOperationException("Transport.sln not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>The example's built assembly, in the same configuration as the tests.</summary>
    public static string AssemblyPath(string example)
    {
        string configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        string path = Path.Combine(RepoRoot, "examples", example, "bin", configuration, "net10.0", example + ".dll");
        return File.Exists(path) ? path : throw new FileNotFoundException("Build the solution first: " + path);
    }

    public static ExampleProcess Start(string example, params string[] args) => StartProgram("dotnet", [AssemblyPath(example), .. args]);

    /// <summary>
    /// Starts the example with at most <paramref name="openFiles"/> open file descriptors (soft and hard limit),
    /// as <c>ulimit -n</c> or systemd's <c>LimitNOFILE=</c> would run it.
    /// </summary>
    // prlimit sets the limit on itself and then execs dotnet, so the process id stays the host's.
    public static ExampleProcess StartWithOpenFileLimit(int openFiles, string example, params string[] args) =>
        StartProgram(Tool.RequireOnPath("prlimit"), [$"--nofile={openFiles}:{openFiles}", "dotnet", AssemblyPath(example), .. args]);

    /// <summary>Starts the example with <paramref name="environment"/> set (or, for a null value, removed) in its environment.</summary>
    public static ExampleProcess StartWithEnvironment(string example, IReadOnlyDictionary<string, string?> environment, params string[] args) =>
        StartProgram("dotnet", [AssemblyPath(example), .. args], environment);

    /// <summary>Starts any program (a long-running client such as <c>redis-cli subscribe</c>) with its output captured by line.</summary>
    public static ExampleProcess StartProgram(string fileName, params string[] args) => StartProgram(fileName, args, null);

    private static ExampleProcess StartProgram(string fileName, string[] args, IReadOnlyDictionary<string, string?>? environment)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach ((string name, string? value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                info.Environment.Remove(name);
            }
            else
            {
                info.Environment[name] = value;
            }
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var example1 = new ExampleProcess(process);
        process.OutputDataReceived += (_, e) => example1.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => example1.OnLine(e.Data);
        process.Exited += (_, _) => example1._exited.TrySetResult();
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return example1;
    }

    /// <summary>Waits until a line of output matches <paramref name="pattern"/>.</summary>
    public Task<Match> WaitForLineAsync(string pattern)
    {
        var regex = new Regex(pattern);
        var seen = new TaskCompletionSource<Match>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_output)
        {
            foreach (string line in _output)
            {
                Match match = regex.Match(line);
                if (match.Success)
                {
                    return Task.FromResult(match);
                }
            }

            _waiters.Add((regex, seen));
        }

        return Task.WhenAny(seen.Task, _exited.Task).ContinueWith(
            t => seen.Task.IsCompleted ? seen.Task.Result : throw new InvalidOperationException(
                "The process exited before printing a line matching " + pattern + ":\n" + string.Join('\n', Output)),
            CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default).DefaultTimeout();
    }

    public async Task<int> StopAsync()
    {
        if (!_process.HasExited)
        {
            Terminate();
        }

        await _exited.Task.DefaultTimeout();
        await _process.WaitForExitAsync().DefaultTimeout();
        return _process.ExitCode;
    }

    public async Task<int> WaitForExitAsync()
    {
        await _process.WaitForExitAsync().DefaultTimeout();
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().DefaultTimeout();
        }

        _process.Dispose();
    }

    /// <summary>Sends a signal by name: TERM (as a service manager or Ctrl+C does), HUP (reload), STOP and CONT (to pause a client).</summary>
    public void Signal(string name)
    {
        // kill(2) itself rather than the kill program, which a machine with only the .NET SDK may lack (procps).
        int signal = name switch
        {
            "HUP" => 1,
            "TERM" => 15,
            "STOP" => 19,
            "CONT" => 18,
            _ => throw new ArgumentOutOfRangeException(nameof(name), name, "HUP, TERM, STOP or CONT"),
        };
        if (Kill(_process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, SIG{name}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int Kill(int pid, int signal);

    private void Terminate() => Signal("TERM");

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.Add(line);
            foreach ((Regex pattern, TaskCompletionSource<Match> seen) in _waiters)
            {
                Match match = pattern.Match(line);
                if (match.Success)
                {
                    seen.TrySetResult(match);
                }
            }
        }
    }

    public StreamWriter StandardInput => _process.StandardInput;
}
