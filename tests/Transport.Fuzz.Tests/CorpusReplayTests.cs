using Transport.Fuzz;

namespace Transport.Fuzz.Tests;

/// <summary>
/// Every input in tests/Transport.Fuzz/corpus (the seeds, the coverage afl-fuzz found, and every crash it found,
/// each fixed since) runs through its fuzz target: a parser change that brings back a fixed bug, or breaks an
/// invariant on an input the fuzzer once reached, fails here without afl-fuzz.
/// </summary>
public sealed class CorpusReplayTests
{
    private static readonly string CorpusRoot = Path.Combine(AppContext.BaseDirectory, "corpus");

    public static TheoryData<string> Targets() => new(FuzzTargets.Names.Order(StringComparer.Ordinal));

    [Theory]
    [MemberData(nameof(Targets))]
    public void EveryCorpusInputPasses(string target)
    {
        string[] files = Directory.GetFiles(Path.Combine(CorpusRoot, target));
        Assert.NotEmpty(files);
        var failures = new List<string>();
        foreach (string file in files.Order(StringComparer.Ordinal))
        {
            try
            {
                FuzzTargets.Run(target, File.ReadAllBytes(file));
            }
            catch (Exception ex)
            {
                failures.Add($"{Path.GetFileName(file)}: {ex.GetType().Name}: {ex.Message}");
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {files.Length} inputs fail:\n{string.Join("\n", failures)}");
    }

    [Fact]
    public void EveryCorpusFolderIsATarget()
    {
        string[] folders = [.. Directory.GetDirectories(CorpusRoot).Select(Path.GetFileName).Order(StringComparer.Ordinal)!];
        Assert.Equal(FuzzTargets.Names.Order(StringComparer.Ordinal), folders);
    }
}
