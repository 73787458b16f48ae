using SharpFuzz;
using Transport.Fuzz;

// Under afl-fuzz (fuzz.sh): Transport.Fuzz TARGET, the input on stdin, in SharpFuzz's out-of-process fork server
// so a hang or a stack overflow costs a restart, not the run.
// By hand: Transport.Fuzz replay TARGET FILE|DIR..., which prints each failing input with its exception.
if (args.Length == 1 && FuzzTargets.Names.Contains(args[0]))
{
    string target = args[0];
    var buffer = new MemoryStream();
    Fuzzer.OutOfProcess.Run(stream =>
    {
        buffer.SetLength(0);
        stream.CopyTo(buffer);
        FuzzTargets.Run(target, buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
    });
    return 0;
}

if (args.Length >= 3 && args[0] == "replay")
{
    int failed = 0;
    int total = 0;
    foreach (string path in args[2..].SelectMany(p => Directory.Exists(p) ? Directory.EnumerateFiles(p) : [p]).Order(StringComparer.Ordinal))
    {
        total++;
        try
        {
            FuzzTargets.Run(args[1], File.ReadAllBytes(path));
        }
        catch (Exception ex)
        {
            failed++;
            Console.WriteLine($"FAIL {path}: {ex}");
        }
    }

    Console.WriteLine($"{args[1]}: {total - failed} of {total} inputs pass");
    return failed == 0 ? 0 : 1;
}

Console.Error.WriteLine($"usage: Transport.Fuzz TARGET (under afl-fuzz) | Transport.Fuzz replay TARGET FILE|DIR...\ntargets: {string.Join(" ", FuzzTargets.Names)}");
return 2;
