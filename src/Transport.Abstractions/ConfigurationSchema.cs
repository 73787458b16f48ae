using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace Transport;

/// <summary>
/// The keys an options section accepts and what each value must look like, written out by the options' owner (no
/// reflection, so it works trimmed and with Native AOT). The host checks a section against it before binding: a
/// value of the wrong type fails start with the same kind of message as a bad value (<c>Transport:Limits:MaxConcurrentConnections
/// is 'abc'; it must be a whole number.</c>), and a misspelled key is reported with the closest known one.
/// </summary>
public sealed class ConfigurationSchema
{
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The known keys, in the order they were added.</summary>
    public IEnumerable<string> Keys => _entries.Keys;

    /// <summary>Adds a key whose value is <c>true</c> or <c>false</c>.</summary>
    /// <param name="key">The key, as the options property is named.</param>
    /// <returns>This schema.</returns>
    public ConfigurationSchema TrueOrFalse(string key) =>
        Add(key, new Entry(v => bool.TryParse(v, out _), "true or false", null, false));

    /// <summary>Adds a key whose value is a whole number (what an <see cref="int"/> or <see cref="long"/> property takes).</summary>
    /// <param name="key">The key.</param>
    /// <param name="is64Bit">Whether the property is a <see cref="long"/> rather than an <see cref="int"/>.</param>
    /// <returns>This schema.</returns>
    public ConfigurationSchema WholeNumber(string key, bool is64Bit = false) =>
        Add(key, new Entry(
            is64Bit ? v => long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out _)
                    : v => int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out _),
            "a whole number", null, false));

    /// <summary>Adds a key whose value is a <see cref="System.TimeSpan"/> such as <c>00:00:10</c>.</summary>
    /// <param name="key">The key.</param>
    /// <returns>This schema.</returns>
    public ConfigurationSchema Duration(string key) =>
        Add(key, new Entry(v => System.TimeSpan.TryParse(v, CultureInfo.InvariantCulture, out _), "a time span such as 00:00:10", null, false));

    /// <summary>Adds a key whose value is one of the names of <typeparamref name="TEnum"/> (any case).</summary>
    /// <typeparam name="TEnum">The enum.</typeparam>
    /// <param name="key">The key.</param>
    /// <returns>This schema.</returns>
    public ConfigurationSchema OneOf<TEnum>(string key)
        where TEnum : struct, System.Enum =>
        Add(key, new Entry(
            v => System.Enum.TryParse<TEnum>(v, ignoreCase: true, out _),
            "one of " + string.Join(", ", System.Enum.GetNames<TEnum>()), null, false));

    /// <summary>Adds a key whose value is any text.</summary>
    /// <param name="key">The key.</param>
    /// <returns>This schema.</returns>
    public ConfigurationSchema Text(string key) => Add(key, new Entry(static _ => true, "text", null, false));

    /// <summary>Adds a subsection with keys of its own.</summary>
    /// <param name="key">The subsection's key.</param>
    /// <param name="schema">Its keys.</param>
    /// <returns>This schema.</returns>
    public ConfigurationSchema Section(string key, ConfigurationSchema schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        return Add(key, new Entry(null, "a section", schema, false));
    }

    /// <summary>Adds a subsection whose children have names of the user's choosing, each with the keys of <paramref name="schema"/>.</summary>
    /// <param name="key">The subsection's key, e.g. <c>Endpoints</c>.</param>
    /// <param name="schema">The keys of each child.</param>
    /// <returns>This schema.</returns>
    public ConfigurationSchema Map(string key, ConfigurationSchema schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        return Add(key, new Entry(null, "a section", schema, true));
    }

    /// <summary>
    /// Checks every value under <paramref name="section"/> that this schema knows: one message per value of the wrong
    /// type, each naming its full key, the value and what is accepted. Unknown keys are not reported here.
    /// </summary>
    /// <param name="section">The section to check.</param>
    /// <returns>The messages; empty when every known value parses.</returns>
    public IReadOnlyList<string> CheckValues(IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(section);
        var failures = new List<string>();
        Walk(section, failures, null);
        return failures;
    }

    /// <summary>
    /// Finds every key under <paramref name="section"/> this schema does not know, with the known key closest to it
    /// (the smallest edit distance, when small enough to be a likely typo).
    /// </summary>
    /// <param name="section">The section to check.</param>
    /// <returns>Each unknown key's full path and its likely intended full path, or null when none is close.</returns>
    public IReadOnlyList<(string Key, string? Closest)> FindUnknownKeys(IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(section);
        var unknown = new List<(string, string?)>();
        Walk(section, null, unknown);
        return unknown;
    }

    private ConfigurationSchema Add(string key, Entry entry)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(key);
        _entries[key] = entry;
        return this;
    }

    private void Walk(IConfiguration section, List<string>? failures, List<(string, string?)>? unknown)
    {
        foreach (IConfigurationSection child in section.GetChildren())
        {
            if (!_entries.TryGetValue(child.Key, out Entry? entry))
            {
                unknown?.Add((child.Path, Closest(child.Key) is { } closest ? ParentPath(child.Path) + closest : null));
                continue;
            }

            if (entry.Schema is null)
            {
                // An empty value is what an unset environment variable or an empty JSON string gives: the binder
                // leaves the default, so do we.
                if (failures is not null && !string.IsNullOrEmpty(child.Value) && !entry.Parses!(child.Value))
                {
                    failures.Add($"{child.Path} is '{child.Value}'; it must be {entry.Accepted}.");
                }

                continue;
            }

            if (entry.IsMap)
            {
                foreach (IConfigurationSection item in child.GetChildren())
                {
                    entry.Schema.Walk(item, failures, unknown);
                }
            }
            else
            {
                entry.Schema.Walk(child, failures, unknown);
            }
        }
    }

    private static string ParentPath(string path)
    {
        int last = path.LastIndexOf(':');
        return last < 0 ? "" : path[..(last + 1)];
    }

    private string? Closest(string key)
    {
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (string known in _entries.Keys)
        {
            int distance = EditDistance(key.ToUpperInvariant(), known.ToUpperInvariant());
            if (distance < bestDistance)
            {
                (best, bestDistance) = (known, distance);
            }
        }

        // A third of the key's length is still a typo (Endpionts, MaxConcurentConnections); more is another word.
        return bestDistance <= Math.Max(2, key.Length / 3) ? best : null;
    }

    private static int EditDistance(string a, string b)
    {
        int width = b.Length + 1;
        var d = new int[(a.Length + 1) * width];
        for (int i = 0; i <= a.Length; i++)
        {
            d[i * width] = i;
        }

        for (int j = 0; j <= b.Length; j++)
        {
            d[j] = j;
        }

        for (int i = 1; i <= a.Length; i++)
        {
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[(i * width) + j] = Math.Min(Math.Min(d[((i - 1) * width) + j] + 1, d[(i * width) + j - 1] + 1), d[((i - 1) * width) + j - 1] + cost);
                // Two neighbours swapped (Endpionts) count as one edit, as a person would count them.
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[(i * width) + j] = Math.Min(d[(i * width) + j], d[((i - 2) * width) + j - 2] + 1);
                }
            }
        }

        return d[(a.Length * width) + b.Length];
    }

    private sealed record Entry(Func<string, bool>? Parses, string Accepted, ConfigurationSchema? Schema, bool IsMap);
}

/// <summary>
/// A section of configuration that a registered component binds, and its keys: registered in the service collection by
/// each <c>Add…(IConfiguration)</c>, so the host knows the keys under <c>Transport</c> that its transports and plugins own.
/// </summary>
/// <param name="Path">The section's full path, e.g. <c>Transport:Sockets</c>.</param>
/// <param name="Schema">Its keys.</param>
public sealed record ConfigurationSectionSchema(string Path, ConfigurationSchema Schema);
