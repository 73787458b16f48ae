namespace Transport.Fuzz;

/// <summary>One fuzz target: runs the code under test on one input and throws when it finds a bug.</summary>
/// <param name="input">The fuzzer's bytes.</param>
public delegate void FuzzTarget(ReadOnlySpan<byte> input);

/// <summary>
/// The fuzz targets by name, as <c>fuzz.sh</c> and the corpus folders name them. A target throws
/// <see cref="Exception"/> for a bug: an exception the code under test must not let escape, or a broken invariant.
/// </summary>
public static class FuzzTargets
{
    /// <summary>
    /// Inputs are cut to this: the parsers' limits are reached with small configured maximums, and some checks
    /// re-parse as the bytes arrive (quadratic in the input), so larger inputs only slow the fuzzer down.
    /// </summary>
    public const int MaxInputLength = 16 * 1024;

    private static readonly Dictionary<string, FuzzTarget> Targets = new(StringComparer.Ordinal)
    {
        ["http-head"] = HttpHeadTarget.Run,
        ["resp"] = RespTarget.Run,
        ["length-prefixed"] = FramingTargets.LengthPrefixed,
        ["delimiter"] = FramingTargets.Delimiter,
        ["line"] = FramingTargets.Line,
        ["fixed-size"] = FramingTargets.FixedSize,
        ["fixed-header"] = FramingTargets.FixedHeader,
        ["message-reader"] = MessageReaderTarget.Run,
        ["transport-url"] = UrlTarget.Run,
        ["proxy-protocol"] = ProxyProtocolTarget.Run,
    };

    /// <summary>The target names.</summary>
    public static IReadOnlyCollection<string> Names => Targets.Keys;

    /// <summary>Runs <paramref name="target"/> on <paramref name="input"/> (cut to <see cref="MaxInputLength"/>).</summary>
    /// <param name="target">A name from <see cref="Names"/>.</param>
    /// <param name="input">The input.</param>
    public static void Run(string target, ReadOnlySpan<byte> input)
    {
        if (!Targets.TryGetValue(target, out FuzzTarget? run))
        {
            throw new ArgumentException($"Unknown fuzz target '{target}'; the targets are {string.Join(", ", Names)}.", nameof(target));
        }

        run(input[..Math.Min(input.Length, MaxInputLength)]);
    }
}
