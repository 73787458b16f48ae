using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Transport;

/// <summary>
/// Parses and formats the endpoint URLs used in configuration: <c>tcp://host:port</c>,
/// <c>unix:/absolute/path</c> and <c>memory://name</c>; <c>systemd:NAME</c> and <c>fd:N</c> name inherited sockets,
/// which the host resolves (<see cref="InheritedSocketEndPoint"/>).
/// </summary>
public static class TransportUrl
{
    /// <summary>The URL forms a listener accepts, for error messages.</summary>
    public const string AcceptedListenForms =
        "tcp://HOST:PORT (HOST: an IPv4 address, [IPv6 address], localhost or * for any; PORT: 0-65535, 0 picks a free port), " +
        "udp://HOST:PORT (as tcp), unix:/absolute/path, memory://name, " +
        "systemd:NAME (a socket systemd passed, by its FileDescriptorName), fd:N (an inherited socket descriptor, 3 or more)";

    /// <summary>
    /// Parses a URL into the endpoints a listener binds (<c>udp://</c> gives <see cref="UdpEndPoint"/>s). <c>localhost</c> gives the IPv4 and IPv6 loopback
    /// addresses (IPv4 alone when the port is 0, so both cannot get different ports); <c>*</c> gives the
    /// IPv6 any address (dual mode) where IPv6 is supported, else the IPv4 one.
    /// </summary>
    /// <param name="url">The URL, e.g. <c>tcp://127.0.0.1:7007</c>.</param>
    /// <returns>One or more endpoints.</returns>
    /// <exception cref="FormatException">The URL is malformed; the message says why.</exception>
    /// <exception cref="NotSupportedException">The scheme is known but its transport is not available.</exception>
    public static IReadOnlyList<EndPoint> ParseListenEndPoints(string url) => Parse(url, listen: true);

    /// <summary>
    /// Parses a URL into the endpoint a client connects to. Host names other than IP addresses give a
    /// <see cref="DnsEndPoint"/>, resolved when connecting.
    /// </summary>
    /// <param name="url">The URL, e.g. <c>tcp://example.org:7</c> or <c>unix:/run/app.sock</c>.</param>
    /// <returns>The endpoint.</returns>
    /// <exception cref="FormatException">The URL is malformed; the message says why.</exception>
    /// <exception cref="NotSupportedException">The scheme is known but its transport is not available.</exception>
    public static EndPoint ParseConnectEndPoint(string url) => Parse(url, listen: false)[0];

    /// <summary>Formats an endpoint as a URL, e.g. <c>tcp://127.0.0.1:7007</c> or <c>unix:/run/app.sock</c>.</summary>
    /// <param name="endpoint">The endpoint.</param>
    /// <returns>The URL, or <c>ToString()</c> for unknown endpoint types.</returns>
    public static string Format(EndPoint? endpoint) => endpoint switch
    {
        null => "(none)",
        IPEndPoint ip => "tcp://" + ip,
        DnsEndPoint dns => "tcp://" + dns.Host + ":" + dns.Port.ToString(CultureInfo.InvariantCulture),
        UnixDomainSocketEndPoint unix => "unix:" + unix,
        UdpEndPoint udp => udp.ToString(),
        _ => endpoint.ToString() ?? endpoint.GetType().Name,
    };

    private static EndPoint[] Parse(string url, bool listen)
    {
        ArgumentNullException.ThrowIfNull(url);
        url = url.Trim();
        int colon = url.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            throw Bad(url, "it has no scheme");
        }

        string scheme = url[..colon].ToLowerInvariant();
        string rest = url[(colon + 1)..];
        return scheme switch
        {
            "tcp" => ParseTcp(url, rest, listen),
            "unix" => [ParseUnix(url, rest)],
            "memory" => [ParseMemory(url, rest)],
            "udp" => [.. ParseTcp(url, rest, listen, "udp").Select(static e => new UdpEndPoint(e))],
            "systemd" or "fd" => throw InheritedNotParsed(url),
            _ => throw Bad(url, $"unknown scheme '{scheme}'"),
        };
    }

    /// <summary>
    /// Whether <paramref name="url"/> names an inherited socket: <c>systemd:NAME</c> (<paramref name="name"/> set) or
    /// <c>fd:N</c> (<paramref name="fileDescriptor"/> set, else -1).
    /// </summary>
    /// <exception cref="FormatException">The scheme is <c>systemd</c> or <c>fd</c> but the rest is malformed.</exception>
    internal static bool TryParseInherited(string url, out string? name, out int fileDescriptor)
    {
        ArgumentNullException.ThrowIfNull(url);
        name = null;
        fileDescriptor = -1;
        string trimmed = url.Trim();
        if (trimmed.StartsWith("systemd:", StringComparison.OrdinalIgnoreCase))
        {
            string rest = trimmed["systemd:".Length..];
            // systemd's own rule for FileDescriptorName=: 1 to 255 printable ASCII characters, no ':'.
            if (rest.Length is 0 or > 255 || rest.Any(static c => c is < ' ' or > '~' or ':'))
            {
                throw Bad(url, "expected systemd:NAME, NAME as in the socket unit's FileDescriptorName= (1 to 255 printable ASCII characters, no ':')");
            }

            name = rest;
            return true;
        }

        if (trimmed.StartsWith("fd:", StringComparison.OrdinalIgnoreCase))
        {
            string rest = trimmed["fd:".Length..];
            if (!int.TryParse(rest, NumberStyles.None, CultureInfo.InvariantCulture, out int fd) || fd < 3)
            {
                throw Bad(url, $"expected fd:N with N a descriptor number of 3 or more (0, 1 and 2 are stdin, stdout and stderr), not '{rest}'");
            }

            fileDescriptor = fd;
            return true;
        }

        return false;
    }

    private static NotSupportedException InheritedNotParsed(string url) =>
        new($"'{url}' names an inherited socket, not an address: the host (AddTransport) takes it over at start.");

    private static EndPoint[] ParseTcp(string url, string rest, bool listen, string scheme = "tcp")
    {
        if (!rest.StartsWith("//", StringComparison.Ordinal))
        {
            throw Bad(url, $"expected {scheme}://HOST:PORT");
        }

        string authority = rest[2..].TrimEnd('/');
        string host;
        string portText;
        if (authority.StartsWith('['))
        {
            int close = authority.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || close + 1 >= authority.Length || authority[close + 1] != ':')
            {
                throw Bad(url, $"expected {scheme}://[IPv6]:PORT");
            }

            host = authority[1..close];
            portText = authority[(close + 2)..];
        }
        else
        {
            int lastColon = authority.LastIndexOf(':');
            if (lastColon < 0)
            {
                throw Bad(url, "the port is missing");
            }

            host = authority[..lastColon];
            portText = authority[(lastColon + 1)..];
            if (host.Contains(':', StringComparison.Ordinal))
            {
                throw Bad(url, $"an IPv6 address must be in brackets, e.g. {scheme}://[::1]:7007");
            }
        }

        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > IPEndPoint.MaxPort)
        {
            throw Bad(url, $"port '{portText}' is not a number from 0 to 65535");
        }

        if (host.Length == 0)
        {
            throw Bad(url, "the host is missing");
        }

        if (host == "*")
        {
            if (!listen)
            {
                throw Bad(url, "'*' can only be listened on, not connected to");
            }

            return [Socket.OSSupportsIPv6 ? new IPEndPoint(IPAddress.IPv6Any, port) : new IPEndPoint(IPAddress.Any, port)];
        }

        if (IPAddress.TryParse(host, out IPAddress? address))
        {
            return [new IPEndPoint(address, port)];
        }

        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            if (listen && port != 0 && Socket.OSSupportsIPv6)
            {
                return [new IPEndPoint(IPAddress.Loopback, port), new IPEndPoint(IPAddress.IPv6Loopback, port)];
            }

            return [new IPEndPoint(IPAddress.Loopback, port)];
        }

        if (listen)
        {
            throw Bad(url, $"host '{host}' must be an IP address, localhost or * to listen on");
        }

        if (Uri.CheckHostName(host) != UriHostNameType.Dns)
        {
            throw Bad(url, $"host '{host}' is not a valid host name");
        }

        return [new DnsEndPoint(host, port)];
    }

    private static UnixDomainSocketEndPoint ParseUnix(string url, string rest)
    {
        string path = rest.StartsWith("///", StringComparison.Ordinal) ? rest[2..] : rest;
        if (path.StartsWith("//", StringComparison.Ordinal) || !Path.IsPathFullyQualified(path))
        {
            throw Bad(url, "expected unix:/absolute/path");
        }

        try
        {
            return new UnixDomainSocketEndPoint(path);
        }
        catch (ArgumentException ex)
        {
            throw Bad(url, ex.Message);
        }
    }

    private static MemoryEndPoint ParseMemory(string url, string rest)
    {
        string name = rest.StartsWith("//", StringComparison.Ordinal) ? rest[2..].TrimEnd('/') : "";
        if (name.Length == 0 || name.Contains('/', StringComparison.Ordinal) || name.Any(char.IsWhiteSpace))
        {
            throw Bad(url, "expected memory://NAME (a name without '/' or spaces)");
        }

        return new MemoryEndPoint(name);
    }

    private static FormatException Bad(string url, string why) => new($"'{url}' is not a valid endpoint URL: {why}.");
}
