namespace Transport.Hosting.Internal.Tls;

/// <summary>
/// Picks the certificate for the host name a client sent (SNI) as Kestrel does: the exact name, then the longest
/// wildcard (<c>*.example.com</c> for any name under <c>example.com</c>), then <c>*</c>, then the endpoint's own.
/// </summary>
internal sealed class SniSelector
{
    private readonly Dictionary<string, ServerCertificate> _exact = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<(string Suffix, ServerCertificate Certificate)> _wildcards = [];
    private readonly ServerCertificate? _any;
    private readonly ServerCertificate? _default;

    public SniSelector(ServerCertificate? endpoint, IEnumerable<(string Name, ServerCertificate Certificate)> entries)
    {
        _default = endpoint;
        foreach ((string name, ServerCertificate certificate) in entries)
        {
            if (name == "*")
            {
                _any = certificate;
            }
            else if (name.StartsWith("*.", StringComparison.Ordinal))
            {
                _wildcards.Add((name[1..], certificate));
            }
            else
            {
                _exact[name] = certificate;
            }
        }

        _wildcards.Sort(static (a, b) => b.Suffix.Length.CompareTo(a.Suffix.Length));
    }

    /// <summary>Whether <paramref name="name"/> is an SNI key this selector understands.</summary>
    public static bool IsValidName(string name) =>
        name == "*" || (name.Length > 0 && name.LastIndexOf('*') <= 0 && (!name.StartsWith('*') || (name.StartsWith("*.", StringComparison.Ordinal) && name.Length > 2)));

    /// <summary>The certificate for <paramref name="serverName"/>, or null when none applies.</summary>
    public ServerCertificate? Select(string? serverName)
    {
        if (!string.IsNullOrEmpty(serverName))
        {
            if (_exact.TryGetValue(serverName, out ServerCertificate? exact))
            {
                return exact;
            }

            foreach ((string suffix, ServerCertificate certificate) in _wildcards)
            {
                if (serverName.Length > suffix.Length && serverName.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
                {
                    return certificate;
                }
            }
        }

        return _any ?? _default;
    }
}
