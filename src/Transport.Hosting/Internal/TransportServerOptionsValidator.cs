using System.Globalization;
using System.Net;
using Microsoft.Extensions.Options;
using Transport.Hosting.Internal.Middleware;

namespace Transport.Hosting.Internal;

/// <summary>
/// Checks the whole configuration when the host starts, so a bad value fails before the first byte, with a
/// message that names the key, the value, and what is accepted.
/// </summary>
internal sealed class TransportServerOptionsValidator(
    IEnumerable<ProtocolRegistration> protocols,
    IEnumerable<ITransportFactory> transports,
    IEnumerable<ConnectionMiddlewareRegistration> middleware,
    IServiceProvider services,
    TransportConfigurationPath path) : IValidateOptions<TransportServerOptions>
{
    public ValidateOptionsResult Validate(string? name, TransportServerOptions options)
    {
        var failures = new List<string>();
        string root = path.Path;
        ValidateLimits($"{root}:Limits", options.Limits, failures);

        string registered = string.Join(", ", protocols.Select(p => p.Name).Distinct(StringComparer.OrdinalIgnoreCase).Order(StringComparer.OrdinalIgnoreCase));
        if (registered.Length == 0)
        {
            registered = "(none: register one with AddProtocol)";
        }

        var owners = new Dictionary<EndPoint, string>();
        foreach ((string key, TransportEndpointOptions endpoint) in options.Endpoints.OrderBy(e => e.Key, StringComparer.OrdinalIgnoreCase))
        {
            string prefix = $"{root}:Endpoints:{key}";
            ValidateUrl(prefix, key, endpoint.Url, owners, failures);

            ProtocolRegistration? protocol = protocols.FirstOrDefault(p => string.Equals(p.Name, endpoint.Protocol, StringComparison.OrdinalIgnoreCase));
            if (string.IsNullOrWhiteSpace(endpoint.Protocol))
            {
                failures.Add($"{prefix}:Protocol is missing. Registered protocols: {registered}.");
            }
            else if (protocol is null)
            {
                failures.Add($"{prefix}:Protocol '{endpoint.Protocol}' is not a registered protocol. Registered protocols: {registered}.");
            }
            else if (IsDatagramUrl(endpoint.Url) && Attribute.IsDefined(protocol.HandlerType, typeof(StreamTransportOnlyAttribute)))
            {
                failures.Add($"{prefix}:Protocol '{endpoint.Protocol}' needs a byte stream and cannot serve the datagram endpoint '{endpoint.Url}'; use tcp://, unix: or memory://.");
            }

            ValidateLimits($"{prefix}:Limits", endpoint.Limits, failures);
            EndpointPipeline.Validate(prefix, root, key, endpoint, options.EndpointDefaults, [.. middleware], services, failures);
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private void ValidateUrl(string prefix, string key, string? url, Dictionary<EndPoint, string> owners, List<string> failures)
    {
        if (string.IsNullOrWhiteSpace(url))
        {
            failures.Add($"{prefix}:Url is missing. Accepted: {TransportUrl.AcceptedListenForms}.");
            return;
        }

        IReadOnlyList<EndPoint> endpoints;
        try
        {
            endpoints = TransportUrl.ParseListenEndPoints(url);
        }
        catch (FormatException ex)
        {
            failures.Add($"{prefix}:Url {ex.Message} Accepted: {TransportUrl.AcceptedListenForms}.");
            return;
        }
        catch (NotSupportedException ex)
        {
            failures.Add($"{prefix}:Url {ex.Message}");
            return;
        }

        foreach (EndPoint endpoint in endpoints)
        {
            if (!transports.Any(t => t.CanBind(endpoint)))
            {
                failures.Add($"{prefix}:Url '{url}': no registered transport can listen on {endpoint.GetType().Name}.");
                continue;
            }

            if (endpoint is IPEndPoint { Port: 0 })
            {
                continue;
            }

            if (owners.TryGetValue(endpoint, out string? other))
            {
                failures.Add($"{prefix}:Url '{url}' is the same address as endpoint '{other}'; each endpoint needs its own address.");
            }
            else
            {
                owners[endpoint] = key;
            }
        }
    }

    private static bool IsDatagramUrl(string? url) =>
        url is not null && url.TrimStart().StartsWith("udp:", StringComparison.OrdinalIgnoreCase);

    private static void ValidateLimits(string prefix, TransportLimits limits, List<string> failures)
    {
        if (limits.MaxConcurrentConnections is <= 0)
        {
            failures.Add($"{prefix}:MaxConcurrentConnections must be a positive number (was {limits.MaxConcurrentConnections.Value.ToString(CultureInfo.InvariantCulture)}); leave it unset for no limit.");
        }

        if (limits.ShutdownTimeout is { } timeout && timeout < TimeSpan.Zero)
        {
            failures.Add($"{prefix}:ShutdownTimeout must not be negative (was {timeout}).");
        }

        if (limits.MaxReadBufferSize is < 0)
        {
            failures.Add($"{prefix}:MaxReadBufferSize must be 0 (no limit) or a positive number of bytes (was {limits.MaxReadBufferSize.Value.ToString(CultureInfo.InvariantCulture)}).");
        }

        if (limits.MaxWriteBufferSize is < 0)
        {
            failures.Add($"{prefix}:MaxWriteBufferSize must be 0 (no limit) or a positive number of bytes (was {limits.MaxWriteBufferSize.Value.ToString(CultureInfo.InvariantCulture)}).");
        }
    }
}
