using System.Text;
using System.Text.RegularExpressions;
using Xunit;

namespace Transport.Docs.Tests;

/// <summary>
/// Every ```csharp block of the docs is a region of a file that this solution compiles, character for character,
/// and shows every using that file has: a block that no longer compiles fails the build, and one edited in the
/// markdown alone fails here. A snippet may be shown in several places (the README and a package's README); every
/// copy must equal it.
/// </summary>
public sealed partial class SnippetTests
{
    // The line before a block names its region: <!-- snippet: name -->. A region may be split in parts (a snippet's
    // usings, then its statements inside a method the page does not show): the block is the parts joined by a blank line.
    private const string Marker = "<!-- snippet: ";

    private static readonly string[] SnippetFolders = ["tests/Transport.Docs.Tests/Snippets", "tests/Transport.Docs.WebSnippets"];

    [Fact]
    public void EveryCSharpBlock_EqualsItsSnippetRegion()
    {
        Dictionary<string, Snippet> snippets = ReadSnippets();
        var problems = new List<string>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (string markdown in MarkdownFiles())
        {
            foreach (Block block in ReadBlocks(markdown))
            {
                string where = $"{Relative(markdown)}:{block.Line}";
                if (block.Name is null)
                {
                    problems.Add($"{where}: a ```csharp block without '{Marker}NAME -->' on the line before it.");
                }
                else if (!snippets.TryGetValue(block.Name, out Snippet? snippet))
                {
                    problems.Add($"{where}: no '#region docs:{block.Name}' in {string.Join(" or ", SnippetFolders)}.");
                }
                else
                {
                    used.Add(block.Name);
                    if (snippet.Text != block.Text)
                    {
                        problems.Add($"{where}: the block differs from '{block.Name}' in {Relative(snippet.File)}:\n"
                            + FirstDifference(snippet.Text, block.Text));
                    }
                }
            }
        }

        problems.AddRange(snippets.Values.Where(s => !used.Contains(s.Name))
            .Select(s => $"{Relative(s.File)}: snippet '{s.Name}' is shown nowhere; delete it or show it."));
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public void EverySnippetFile_HasOneSnippet_ThatShowsAllItsUsings()
    {
        var problems = new List<string>();
        foreach (string file in SnippetFiles())
        {
            string[] lines = File.ReadAllLines(file);
            var names = new HashSet<string>(StringComparer.Ordinal);
            bool inside = false;
            for (int i = 0; i < lines.Length; i++)
            {
                string line = lines[i].Trim();
                if (RegionStart().Match(line) is { Success: true } start)
                {
                    names.Add(start.Groups[1].Value);
                    inside = true;
                }
                else if (line.StartsWith("#endregion", StringComparison.Ordinal))
                {
                    inside = false;
                }
                else if (UsingDirective().IsMatch(line) && !inside)
                {
                    problems.Add($"{Relative(file)}:{i + 1}: '{line}' is outside the snippet, so the docs would not show it.");
                }
                else if (line.StartsWith("global using", StringComparison.Ordinal))
                {
                    problems.Add($"{Relative(file)}:{i + 1}: a global using would reach every snippet.");
                }
            }

            if (names.Count != 1)
            {
                problems.Add($"{Relative(file)}: {names.Count} snippets; a file holds exactly one, so its usings are that snippet's.");
            }
        }

        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    private static Dictionary<string, Snippet> ReadSnippets()
    {
        var snippets = new Dictionary<string, Snippet>(StringComparer.Ordinal);
        foreach (string file in SnippetFiles())
        {
            var parts = new Dictionary<string, List<string>>(StringComparer.Ordinal);
            string? name = null;
            List<string> current = [];
            foreach (string line in File.ReadAllLines(file))
            {
                if (RegionStart().Match(line.Trim()) is { Success: true } start)
                {
                    name = start.Groups[1].Value;
                    current = [];
                }
                else if (name is not null && line.Trim().StartsWith("#endregion", StringComparison.Ordinal))
                {
                    if (!parts.TryGetValue(name, out List<string>? list))
                    {
                        parts[name] = list = [];
                    }

                    list.Add(Dedent(current));
                    name = null;
                }
                else if (name is not null)
                {
                    current.Add(line);
                }
            }

            foreach ((string snippet, List<string> texts) in parts)
            {
                Assert.True(snippets.TryAdd(snippet, new Snippet(snippet, file, string.Join("\n\n", texts))),
                    $"Snippet '{snippet}' is defined in {Relative(file)} and in {(snippets.TryGetValue(snippet, out Snippet? other) ? Relative(other.File) : "?")}.");
            }
        }

        return snippets;
    }

    private static IEnumerable<Block> ReadBlocks(string markdown)
    {
        string[] lines = File.ReadAllLines(markdown);
        for (int i = 0; i < lines.Length; i++)
        {
            string fence = lines[i].TrimStart();
            if (!fence.StartsWith("```csharp", StringComparison.Ordinal) && !fence.StartsWith("```cs", StringComparison.Ordinal)
                && !fence.StartsWith("```c#", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            int indent = lines[i].Length - fence.Length;
            int open = i;
            var body = new List<string>();
            for (i++; i < lines.Length && !lines[i].TrimStart().StartsWith("```", StringComparison.Ordinal); i++)
            {
                body.Add(lines[i].Length >= indent ? lines[i][indent..] : lines[i].TrimStart());
            }

            string? name = null;
            int previous = open - 1;
            while (previous >= 0 && lines[previous].Trim().Length == 0)
            {
                previous--;
            }

            if (previous >= 0 && lines[previous].Trim() is { } marker && marker.StartsWith(Marker, StringComparison.Ordinal) && marker.EndsWith("-->", StringComparison.Ordinal))
            {
                name = marker[Marker.Length..^3].Trim();
            }

            yield return new Block(name, open + 1, Dedent(body));
        }
    }

    private static string Dedent(List<string> lines)
    {
        List<string> trimmed = lines.Select(l => l.TrimEnd()).SkipWhile(l => l.Length == 0).Reverse().SkipWhile(l => l.Length == 0).Reverse().ToList();
        int indent = trimmed.Where(l => l.Length > 0).Select(l => l.Length - l.TrimStart().Length).DefaultIfEmpty(0).Min();
        return string.Join("\n", trimmed.Select(l => l.Length >= indent ? l[indent..] : l));
    }

    private static string FirstDifference(string expected, string actual)
    {
        string[] e = expected.Split('\n');
        string[] a = actual.Split('\n');
        for (int i = 0; i < Math.Max(e.Length, a.Length); i++)
        {
            string left = i < e.Length ? e[i] : "(end)";
            string right = i < a.Length ? a[i] : "(end)";
            if (left != right)
            {
                return new StringBuilder().Append("  line ").Append(i + 1).Append(" of the snippet: ").AppendLine(left)
                    .Append("  line ").Append(i + 1).Append(" of the block:   ").Append(right).ToString();
            }
        }

        return "  (whitespace)";
    }

    private static IEnumerable<string> MarkdownFiles()
    {
        string root = RepoRoot;
        IEnumerable<string> files = [Path.Combine(root, "README.md")];
        files = files.Concat(Directory.EnumerateFiles(Path.Combine(root, "docs"), "*.md", SearchOption.AllDirectories));
        foreach (string folder in new[] { "src", "plugins", "templates" })
        {
            files = files.Concat(Directory.EnumerateFiles(Path.Combine(root, folder), "README.md", SearchOption.AllDirectories)
                .Where(f => !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal)));
        }

        return files.Order(StringComparer.Ordinal);
    }

    private static IEnumerable<string> SnippetFiles() => SnippetFolders
        .SelectMany(folder => Directory.EnumerateFiles(Path.Combine(RepoRoot, folder), "*.cs", SearchOption.AllDirectories))
        .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal)
)
        .Order(StringComparer.Ordinal);

    private static string Relative(string path) => Path.GetRelativePath(RepoRoot, path);

    internal static string RepoRoot
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

    [GeneratedRegex(@"^#region docs:(\S+)$")]
    private static partial Regex RegionStart();

    [GeneratedRegex(@"^using\s+(static\s+)?[A-Za-z_][\w.]*(\s*=\s*[^;]+)?;")]
    private static partial Regex UsingDirective();

    private sealed record Snippet(string Name, string File, string Text);

    private sealed record Block(string? Name, int Line, string Text);
}
