namespace Transport.Hosting;

/// <summary>
/// What the <c>haproxy-agent</c> protocol reports on (<c>Transport:HaproxyAgent</c>): see
/// <see cref="HaproxyAgentTransportBuilderExtensions.AddHaproxyAgent(ITransportBuilder, Microsoft.Extensions.Configuration.IConfiguration)"/>.
/// </summary>
public sealed class HaproxyAgentOptions
{
    /// <summary>
    /// The names of the endpoints whose load the agent reports (<c>Transport:HaproxyAgent:Endpoints</c>): the weight
    /// follows the busiest of them, <c>maxconn:N</c> is the smallest of their <c>MaxConcurrentConnections</c>.
    /// </summary>
    /// <remarks>Defaults to every endpoint that does not serve the agent itself.</remarks>
    public IList<string> Endpoints { get; } = [];
}
