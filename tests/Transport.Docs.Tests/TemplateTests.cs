using System.Text.Json;
using System.Xml.Linq;
using Xunit;

namespace Transport.Docs.Tests;

/// <summary>
/// The dotnet new template restores outside the repository: by default it asks for the packages this repository
/// packs, and every package it names has a version in its own Directory.Packages.props, the repository's where the
/// repository uses that package too (.ci/packages.sh instantiates, builds and runs it against the packed packages).
/// </summary>
public sealed class TemplateTests
{
    private static readonly string Template = Path.Combine(SnippetTests.RepoRoot, "templates", "transport-protocol");

    [Fact]
    public void DefaultTransportVersion_IsTheVersionThePackagesGet()
    {
        string prefix = XDocument.Load(Path.Combine(SnippetTests.RepoRoot, "eng", "Packaging.props"))
            .Descendants("VersionPrefix").Single().Value;
        using JsonDocument template = JsonDocument.Parse(File.ReadAllText(Path.Combine(Template, ".template.config", "template.json")));

        string? version = template.RootElement.GetProperty("symbols").GetProperty("TransportVersion").GetProperty("defaultValue").GetString();

        Assert.Equal(prefix, version);
    }

    [Fact]
    public void EveryPackageTheTemplateReferences_HasACentralVersion_MatchingTheRepository()
    {
        Dictionary<string, string> ours = Versions(Path.Combine(SnippetTests.RepoRoot, "Directory.Packages.props"));
        Dictionary<string, string> its = Versions(Path.Combine(Template, "Directory.Packages.props"));
        var problems = new List<string>();
        foreach (string project in Directory.EnumerateFiles(Template, "*.csproj", SearchOption.AllDirectories))
        {
            foreach (string package in XDocument.Load(project).Descendants("PackageReference").Select(e => (string)e.Attribute("Include")!))
            {
                if (!its.ContainsKey(package))
                {
                    problems.Add($"{Path.GetFileName(project)} references {package}, which the template's Directory.Packages.props has no version for (NU1010).");
                }
            }
        }

        foreach ((string package, string version) in its)
        {
            if (ours.TryGetValue(package, out string? repoVersion) && repoVersion != version)
            {
                problems.Add($"{package}: the template asks for {version}, the repository uses {repoVersion}.");
            }
            else if (package.StartsWith("Transport.", StringComparison.Ordinal) && version != "$(TransportPackagesVersion)")
            {
                problems.Add($"{package}: the template pins {version} instead of $(TransportPackagesVersion).");
            }
        }

        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    private static Dictionary<string, string> Versions(string path)
    {
        XDocument document = XDocument.Load(path);
        var properties = document.Descendants("PropertyGroup").Elements().ToDictionary(e => e.Name.LocalName, e => e.Value, StringComparer.Ordinal);
        return document.Descendants("PackageVersion").ToDictionary(
            e => (string)e.Attribute("Include")!,
            e => Expand((string)e.Attribute("Version")!, properties),
            StringComparer.Ordinal);
    }

    // $(ExtensionsVersion) in the repository's file; the template's $(TransportPackagesVersion) stays as written.
    private static string Expand(string value, Dictionary<string, string> properties) =>
        value.StartsWith("$(", StringComparison.Ordinal) && properties.TryGetValue(value[2..^1], out string? expanded) ? expanded : value;
}
