namespace Transport.TestSupport;

/// <summary>
/// A fact that drives a real program from Debian (curl, socat, redis-cli...): reported as skipped, with the package to
/// install, where the program is missing, so that <c>dotnet test</c> passes on a machine with only the .NET SDK.
/// With <c>TRANSPORT_REQUIRE_TOOLS=1</c> (set by .ci/run) it always runs, so a missing program fails it.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class ToolFactAttribute : FactAttribute
{
    public ToolFactAttribute(params string[] tools)
    {
        Tools = tools;
        Skip = Tool.SkipReason(tools);
    }

    public IReadOnlyList<string> Tools { get; }
}

/// <summary>The <see cref="ToolFactAttribute"/> of a theory: skipped where a program it drives is missing.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class ToolTheoryAttribute : TheoryAttribute
{
    public ToolTheoryAttribute(params string[] tools)
    {
        Tools = tools;
        Skip = Tool.SkipReason(tools);
    }

    public IReadOnlyList<string> Tools { get; }
}
