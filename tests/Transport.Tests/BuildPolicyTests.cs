using System.Text.Json;

namespace Transport.Tests;

/// <summary>Directory.Build.props and .targets decide a project's kind by its folder in the repo, wherever the repo is.</summary>
public sealed class BuildPolicyTests : IDisposable
{
    // A checkout under folders named like the repo's own: ~/src/... is where many people keep their clones.
    private readonly string _checkout = Path.Combine(EchoServer.NewTempDirectory(), "src", "plugins", "transport");

    public void Dispose()
    {
        string root = Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(_checkout)!)!)!;
        if (Directory.Exists(root))
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Theory]
    [InlineData("src/Library", true)]
    [InlineData("plugins/Protocol", true)]
    [InlineData("tests/Library.Tests", false)]
    [InlineData("examples/Host", false)]
    [InlineData("benchmarks/Bench", false)]
    public async Task ProjectKind_FollowsItsFolderInTheRepo_EvenUnderAParentNamedSrc(string folder, bool shipped)
    {
        Directory.CreateDirectory(_checkout);
        foreach (string file in new[] { "Directory.Build.props", "Directory.Build.targets" })
        {
            File.Copy(Path.Combine(ExampleProcess.RepoRoot, file), Path.Combine(_checkout, file));
        }

        // The props import the packaging settings from eng/.
        Directory.CreateDirectory(Path.Combine(_checkout, "eng"));
        foreach (string file in Directory.GetFiles(Path.Combine(ExampleProcess.RepoRoot, "eng")))
        {
            File.Copy(file, Path.Combine(_checkout, "eng", Path.GetFileName(file)));
        }

        string project = Path.Combine(_checkout, folder, Path.GetFileName(folder) + ".csproj");
        Directory.CreateDirectory(Path.GetDirectoryName(project)!);
        await File.WriteAllTextAsync(project, "<Project Sdk=\"Microsoft.NET.Sdk\" />");

        var result = await Tool.RunAsync("dotnet",
            ["msbuild", project, "-getProperty:GenerateDocumentationFile", "-getProperty:IsPackable", "-getProperty:IsAotCompatible", "-getProperty:NoWarn"]);

        Assert.True(result.ExitCode == 0, result.Error + System.Text.Encoding.UTF8.GetString(result.Output));
        JsonElement properties = JsonDocument.Parse(result.Output).RootElement.GetProperty("Properties");
        Assert.Equal(shipped, properties.GetProperty("GenerateDocumentationFile").GetString() == "true");
        Assert.Equal(shipped, properties.GetProperty("IsPackable").GetString() == "true");
        Assert.Equal(shipped, properties.GetProperty("IsAotCompatible").GetString() == "true");
        // The relaxed analyzer rules are for code that is not public API only.
        Assert.Equal(!shipped, properties.GetProperty("NoWarn").GetString()!.Contains("CA1707", StringComparison.Ordinal));
    }
}
