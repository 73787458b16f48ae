using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Transport.Protocols.Greeting.Internal;

namespace Transport.Protocols.Greeting;

/// <summary>Registers <see cref="GreetingOptions"/> for <see cref="GreetingProtocol"/>.</summary>
public static class GreetingServiceCollectionExtensions
{
    /// <summary>
    /// Binds <see cref="GreetingOptions"/> to <paramref name="configuration"/> (usually the <c>Greeting</c> section) and
    /// validates them when the host starts: a bad value or one of the wrong type fails the start with one message
    /// naming its full key, e.g. <c>Greeting:MaxRequestLineLength is 8; it must be at least 16.</c>
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The section with the options' keys.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddGreetingOptions(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddValidatedOptions<GreetingOptions>(configuration, GreetingOptionsValidator.Schema, static (section, options) => section.Bind(options),
            new GreetingOptionsValidator((configuration as IConfigurationSection)?.Path ?? "", configuration));
        return services;
    }
}
