using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Transport;

/// <summary>Binds an options class to a configuration section the way every Transport component does.</summary>
public static class ConfigurationSchemaServiceCollectionExtensions
{
    /// <summary>
    /// Binds <typeparamref name="TOptions"/> to <paramref name="section"/> and validates it when the host starts with
    /// <paramref name="validator"/> (replacing a validator of the same type registered before, e.g. one for options set
    /// in code), and registers the section's keys for the host's unknown-key check. The section is bound only when every
    /// value <paramref name="schema"/> knows parses, so that a value of the wrong type is reported by the validator (which
    /// should check <see cref="ConfigurationSchema.CheckValues"/>) with the full key, not thrown by the binder.
    /// </summary>
    /// <typeparam name="TOptions">The options class.</typeparam>
    /// <param name="services">The service collection.</param>
    /// <param name="section">The section with the options' keys.</param>
    /// <param name="schema">The options' keys.</param>
    /// <param name="bind">
    /// Binds the section, written at the call site as <c>static (section, options) =&gt; section.Bind(options)</c> so that
    /// the configuration-binding source generator of the calling library binds it without reflection (trim- and AOT-safe).
    /// </param>
    /// <param name="validator">Validates the bound options.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddValidatedOptions<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] TOptions>(this IServiceCollection services, IConfiguration section,
        ConfigurationSchema schema, Action<IConfiguration, TOptions> bind, IValidateOptions<TOptions> validator)
        where TOptions : class
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(bind);
        ArgumentNullException.ThrowIfNull(validator);
        services.AddOptions<TOptions>().ValidateOnStart();
        services.Configure<TOptions>(options =>
        {
            if (schema.CheckValues(section).Count == 0)
            {
                bind(section, options);
            }
        });
        ServiceDescriptor? earlier = services.FirstOrDefault(d => d.ServiceType == typeof(IValidateOptions<TOptions>)
            && d.ImplementationInstance?.GetType() == validator.GetType());
        if (earlier is not null)
        {
            services.Remove(earlier);
        }

        services.AddSingleton(validator);
        services.AddSingleton(new ConfigurationSectionSchema((section as IConfigurationSection)?.Path ?? "", schema));
        return services;
    }
}
