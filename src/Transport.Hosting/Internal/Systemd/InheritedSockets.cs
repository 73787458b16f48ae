using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Transport.Hosting.Internal.Systemd;

/// <summary>
/// Endpoint URLs for sockets this process inherited: <c>systemd:NAME</c> (a LISTEN_FDNAMES name) and <c>fd:N</c>. The
/// validator inspects the descriptor (its type and family against what the endpoint can serve); the server takes it over
/// as an <see cref="InheritedSocketEndPoint"/>, which the socket or UDP transport adopts instead of binding.
/// </summary>
internal static class InheritedSockets
{
    /// <summary>Whether <paramref name="url"/> is <c>systemd:</c> or <c>fd:</c> (malformed ones too: the validator reports them).</summary>
    public static bool IsInheritedUrl(string? url) =>
        url is not null && (url.TrimStart().StartsWith("systemd:", StringComparison.OrdinalIgnoreCase)
            || url.TrimStart().StartsWith("fd:", StringComparison.OrdinalIgnoreCase));

    /// <summary>The descriptor an inherited URL names; false with <paramref name="problem"/> when there is none.</summary>
    /// <exception cref="FormatException">The URL is malformed.</exception>
    public static bool TryResolve(string url, ListenFds passed, out int fd, out string? problem)
    {
        _ = TransportUrl.TryParseInherited(url, out string? name, out fd);
        if (name is not null)
        {
            string passedText = passed.Problem is { } why ? why : "passed: " + passed.Describe();
            fd = passed.Find(name, out int count);
            if (fd < 0)
            {
                problem = count > 1
                    ? $"{count} sockets are named '{name}' in LISTEN_FDNAMES; give each its own FileDescriptorName= ({passedText})"
                    : $"no socket named '{name}' was passed by systemd (LISTEN_FDNAMES; {passedText})";
                return false;
            }
        }

        problem = null;
        return true;
    }

    /// <summary>
    /// Checks an inherited endpoint's URL at validation: the descriptor exists and is a socket Transport can serve.
    /// Returns its kind (null when a failure was added) and its descriptor, so that two endpoints cannot take over one socket.
    /// </summary>
    public static InheritedSocketKind? Validate(string prefix, string url, List<string> failures, out int fd)
    {
        string? problem;
        try
        {
            if (!TryResolve(url, ListenFds.Current, out fd, out problem))
            {
                failures.Add($"{prefix}:Url '{url}': {problem}.");
                return null;
            }
        }
        catch (FormatException ex)
        {
            fd = -1;
            failures.Add($"{prefix}:Url {ex.Message} Accepted: {TransportUrl.AcceptedListenForms}.");
            return null;
        }

        if (!SocketInspector.TryInspect(fd, out InheritedSocketKind kind, out _, out problem))
        {
            failures.Add($"{prefix}:Url '{url}': {problem}.");
            return null;
        }

        return kind;
    }

    /// <summary>Whether the endpoint serves datagrams: <c>udp://</c>, or an inherited datagram socket.</summary>
    public static bool IsDatagram(string? url)
    {
        if (url is null)
        {
            return false;
        }

        if (url.TrimStart().StartsWith("udp:", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        try
        {
            return IsInheritedUrl(url) && TryResolve(url, ListenFds.Current, out int fd, out _)
                && SocketInspector.TryInspect(fd, out InheritedSocketKind kind, out _, out _) && kind == InheritedSocketKind.Datagram;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>
    /// The endpoints the server binds for <paramref name="url"/>: <see cref="TransportUrl.ParseListenEndPoints"/>, or for an
    /// inherited socket the one <see cref="InheritedSocketEndPoint"/> that takes it over.
    /// </summary>
    /// <exception cref="TransportStartupException">The descriptor went away or changed since validation.</exception>
    public static IReadOnlyList<EndPoint> ParseListenEndPoints(string prefix, string url, ILogger logger, string endpointName)
    {
        if (!IsInheritedUrl(url))
        {
            return TransportUrl.ParseListenEndPoints(url);
        }

        if (!TryResolve(url, ListenFds.Current, out int fd, out string? problem)
            || !SocketInspector.TryInspect(fd, out InheritedSocketKind kind, out AddressFamily family, out problem))
        {
            throw new TransportStartupException($"{prefix}:Url '{url}': {problem}.", new IOException(problem));
        }

        Socket socket;
        try
        {
            socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
        }
        catch (SocketException ex)
        {
            throw new TransportStartupException($"{prefix}:Url '{url}': descriptor {fd} cannot be taken over: {ex.Message}", ex);
        }

        SystemdLog.TakingOver(logger, endpointName, url, fd, SocketInspector.Describe(kind, family), TransportUrl.Format(LocalEndPoint(socket, kind)));
        return [new InheritedSocketEndPoint(socket, url)];
    }

    /// <summary>
    /// For systemd's <c>Accept=yes</c> (one service instance per connection, as inetd): once the handed-over connection has
    /// run through the pipeline, the host stops. Any other endpoint's <paramref name="application"/> is returned unchanged.
    /// </summary>
    public static ConnectionDelegate StopHostAfterAcceptedConnection(IReadOnlyList<EndPoint> addresses, ConnectionDelegate application,
        IServiceProvider services, ILogger logger, string endpointName)
    {
        if (addresses is not [InheritedSocketEndPoint { IsListening: false, Socket.SocketType: SocketType.Stream }]
            || services.GetService<IHostApplicationLifetime>() is not { } lifetime)
        {
            return application;
        }

        return async connection =>
        {
            try
            {
                await application(connection).ConfigureAwait(false);
            }
            finally
            {
                SystemdLog.AcceptedConnectionEnded(logger, endpointName);
                lifetime.StopApplication();
            }
        };
    }

    private static EndPoint? LocalEndPoint(Socket socket, InheritedSocketKind kind)
    {
        try
        {
            EndPoint? local = socket.LocalEndPoint;
            return kind == InheritedSocketKind.Datagram && local is not null ? new UdpEndPoint(local) : local;
        }
        catch (SocketException)
        {
            return null;
        }
    }
}
