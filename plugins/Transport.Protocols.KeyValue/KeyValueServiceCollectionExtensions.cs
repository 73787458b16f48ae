using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Transport.Protocols.KeyValue.Internal;

namespace Transport.Protocols.KeyValue;

/// <summary>Registers <see cref="KeyValueProtocolOptions"/> for <see cref="KeyValueProtocol"/>.</summary>
public static class KeyValueServiceCollectionExtensions
{
    /// <summary>
    /// Binds <see cref="KeyValueProtocolOptions"/> to <paramref name="configuration"/> (usually the <c>KeyValue</c>
    /// section), validates them when the host starts (a bad value or one of the wrong type fails the start with one
    /// message naming its full key), and gives them to <see cref="KeyValueProtocol"/>.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The section with the options' keys.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddKeyValueOptions(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddValidatedOptions<KeyValueProtocolOptions>(configuration, KeyValueProtocolOptionsValidator.Schema, static (section, options) => section.Bind(options),
            new KeyValueProtocolOptionsValidator((configuration as IConfigurationSection)?.Path ?? "", configuration));
        // The protocol takes its options as plain data (it is usable without a host).
        services.TryAddSingleton(static sp => sp.GetRequiredService<IOptions<KeyValueProtocolOptions>>().Value);
        return services;
    }
}
