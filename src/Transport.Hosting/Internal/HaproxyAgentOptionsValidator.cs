using Microsoft.Extensions.Options;

namespace Transport.Hosting.Internal;

/// <summary>Fails the start when <c>HaproxyAgent:Endpoints</c> names an endpoint that is not configured, or the agent's own.</summary>
internal sealed class HaproxyAgentOptionsValidator(IOptions<TransportServerOptions> server, TransportConfigurationPath path) : IValidateOptions<HaproxyAgentOptions>
{
    /// <summary>The keys under <c>Transport:HaproxyAgent</c>.</summary>
    public static readonly ConfigurationSchema Schema = new ConfigurationSchema()
        .Text(nameof(HaproxyAgentOptions.Endpoints));

    public ValidateOptionsResult Validate(string? name, HaproxyAgentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Dictionary<string, TransportEndpointOptions> endpoints = server.Value.Endpoints;
        var failures = new List<string>();
        for (int i = 0; i < options.Endpoints.Count; i++)
        {
            string endpoint = options.Endpoints[i];
            string key = $"{path.Path}:HaproxyAgent:Endpoints:{i.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
            if (!endpoints.TryGetValue(endpoint, out TransportEndpointOptions? configured))
            {
                string known = string.Join(", ", endpoints.Keys.Order(StringComparer.OrdinalIgnoreCase));
                failures.Add($"{key} is '{endpoint}', which is not a configured endpoint (configured: {(known.Length == 0 ? "none" : known)}).");
            }
            else if (HaproxyAgentProtocol.IsAgent(configured.Protocol))
            {
                failures.Add($"{key} is '{endpoint}', the agent's own endpoint; name the endpoints whose load it reports.");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
