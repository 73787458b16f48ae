using System.Text;
using Microsoft.AspNetCore.Connections;

namespace Transport.Hosting.Internal.Tls;

/// <summary>
/// One TLS port, several protocols: the endpoint's <c>Protocols</c> map names the protocol for each ALPN name; a
/// connection that negotiated one of them is handed to that protocol, any other to the endpoint's <c>Protocol</c>.
/// An endpoint without the map gets its protocol itself, with nothing in between.
/// </summary>
internal sealed class AlpnProtocolSelector : ConnectionHandler
{
    private readonly ConnectionHandler _fallback;
    private readonly (byte[] Name, ConnectionHandler Protocol)[] _choices;

    private AlpnProtocolSelector(ConnectionHandler fallback, (byte[] Name, ConnectionHandler Protocol)[] choices)
    {
        _fallback = fallback;
        _choices = choices;
    }

    public static ConnectionHandler Create(ConnectionHandler fallback, IReadOnlyDictionary<string, string> protocols, Func<string, ConnectionHandler> resolve) =>
        protocols.Count == 0
            ? fallback
            : new AlpnProtocolSelector(fallback, [.. protocols.Select(p => (Encoding.UTF8.GetBytes(p.Key), resolve(p.Value)))]);

    /// <summary>For the endpoint's pipeline line: which ALPN name reaches which protocol.</summary>
    public static string Describe(IReadOnlyDictionary<string, string> protocols, string fallback) =>
        protocols.Count == 0
            ? ""
            : $" (by ALPN: {string.Join(", ", protocols.Select(p => $"'{p.Key}' → '{p.Value}'"))}; no or another ALPN → '{fallback}')";

    /// <summary>The ALPN names the server offers for the map, after the endpoint's own <c>Tls:ApplicationProtocols</c>.</summary>
    public static IReadOnlyList<string> Offered(IReadOnlyList<string> applicationProtocols, IReadOnlyDictionary<string, string> protocols) =>
        protocols.Count == 0
            ? applicationProtocols
            : [.. applicationProtocols.Concat(protocols.Keys.Where(k => !applicationProtocols.Contains(k, StringComparer.Ordinal)))];

    public static void Validate(string prefix, TransportEndpointOptions endpoint, IEnumerable<ProtocolRegistration> registrations, string registered, List<string> failures)
    {
        if (endpoint.Protocols.Count == 0)
        {
            return;
        }

        if (endpoint.Tls is not { Enabled: not false })
        {
            failures.Add($"{prefix}:Protocols: choosing the protocol by ALPN needs TLS on the endpoint (a Tls section); without it every connection goes to {prefix}:Protocol.");
            return;
        }

        foreach ((string name, string protocol) in endpoint.Protocols)
        {
            int length = Encoding.UTF8.GetByteCount(name);
            if (length is 0 or > 255)
            {
                failures.Add($"{prefix}:Protocols '{name}': an ALPN protocol name is 1 to 255 bytes.");
            }

            if (!registrations.Any(r => string.Equals(r.Name, protocol, StringComparison.OrdinalIgnoreCase)))
            {
                failures.Add($"{prefix}:Protocols:{name} '{protocol}' is not a registered protocol. Registered protocols: {registered}.");
            }
        }
    }

    public override Task OnConnectedAsync(ConnectionContext connection)
    {
        ReadOnlySpan<byte> negotiated = connection.Features.Get<ITransportTlsFeature>() is { } tls ? tls.ApplicationProtocol.Span : default;
        if (!negotiated.IsEmpty)
        {
            foreach ((byte[] name, ConnectionHandler protocol) in _choices)
            {
                if (negotiated.SequenceEqual(name))
                {
                    return protocol.OnConnectedAsync(connection);
                }
            }
        }

        return _fallback.OnConnectedAsync(connection);
    }
}
