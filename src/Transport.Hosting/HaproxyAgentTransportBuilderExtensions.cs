using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Transport.Hosting.Internal;

namespace Transport.Hosting;

/// <summary>Registers the <c>haproxy-agent</c> protocol: HAProxy's <c>agent-check</c>, answered from the server's live state.</summary>
public static class HaproxyAgentTransportBuilderExtensions
{
    /// <summary>
    /// Registers the protocol <c>haproxy-agent</c>, for an endpoint of its own that HAProxy's <c>agent-check</c>
    /// (<c>agent-port</c>) connects to. Each connection gets one line and is closed: <c>up ready 75% maxconn:1000</c> while
    /// serving (the weight is the share of the reported endpoints' <c>MaxConcurrentConnections</c> still free; 100% without
    /// a limit), <c>drain</c> from the moment the host starts stopping (through <c>Transport:DrainDelay</c>), and
    /// <c>down#starting</c> or <c>down#stopping</c> while the server is not serving. Which endpoints it reports on:
    /// <see cref="HaproxyAgentOptions.Endpoints"/>, bound here to <paramref name="configuration"/> (usually
    /// <c>Transport:HaproxyAgent</c>). Costs nothing unless an endpoint names the protocol.
    /// </summary>
    /// <param name="builder">The transport builder.</param>
    /// <param name="configuration">The agent's section, e.g. <c>configuration.GetSection("Transport:HaproxyAgent")</c>.</param>
    /// <returns>The builder.</returns>
    public static ITransportBuilder AddHaproxyAgent(this ITransportBuilder builder, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configuration);
        builder.AddHaproxyAgent(options => configuration.Bind(options));
        // Its keys, for the host's unknown-key check.
        builder.Services.AddSingleton(new ConfigurationSectionSchema((configuration as IConfigurationSection)?.Path ?? "", HaproxyAgentOptionsValidator.Schema));
        return builder;
    }

    /// <summary>
    /// Registers the protocol <c>haproxy-agent</c> as <see cref="AddHaproxyAgent(ITransportBuilder, IConfiguration)"/>
    /// does, with its options set in code.
    /// </summary>
    /// <param name="builder">The transport builder.</param>
    /// <param name="configure">Sets the options; null for the defaults (report on every other endpoint).</param>
    /// <returns>The builder.</returns>
    public static ITransportBuilder AddHaproxyAgent(this ITransportBuilder builder, Action<HaproxyAgentOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        OptionsBuilder<HaproxyAgentOptions> options = builder.Services.AddOptions<HaproxyAgentOptions>().ValidateOnStart();
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<HaproxyAgentOptions>, HaproxyAgentOptionsValidator>());
        if (configure is not null)
        {
            options.Configure(configure);
        }

        return builder.AddProtocol<HaproxyAgentProtocol>(HaproxyAgentProtocol.ProtocolName);
    }
}
