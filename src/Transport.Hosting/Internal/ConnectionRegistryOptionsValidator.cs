using System.Globalization;
using Microsoft.Extensions.Options;

namespace Transport.Hosting.Internal;

/// <summary>Fails the host at start on a registry option it cannot use, naming the key and the value.</summary>
internal sealed class ConnectionRegistryOptionsValidator(TransportConfigurationPath path) : IValidateOptions<ConnectionRegistryOptions>
{
    /// <summary>The keys under <c>Transport:Registry</c>.</summary>
    public static readonly ConfigurationSchema Schema = new ConfigurationSchema()
        .WholeNumber(nameof(ConnectionRegistryOptions.MaxOutboxSize))
        .OneOf<SlowConsumerPolicy>(nameof(ConnectionRegistryOptions.SlowConsumerPolicy));

    public ValidateOptionsResult Validate(string? name, ConnectionRegistryOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (path.Section is { } section)
        {
            IReadOnlyList<string> wrongTypes = Schema.CheckValues(section.GetSection("Registry"));
            if (wrongTypes.Count > 0)
            {
                return ValidateOptionsResult.Fail(wrongTypes);
            }
        }

        if (options.MaxOutboxSize < 1)
        {
            return ValidateOptionsResult.Fail(
                $"{path.Path}:Registry:MaxOutboxSize is {options.MaxOutboxSize.ToString(CultureInfo.InvariantCulture)}; it must be at least 1 (bytes).");
        }

        if (!Enum.IsDefined(options.SlowConsumerPolicy))
        {
            return ValidateOptionsResult.Fail(
                $"{path.Path}:Registry:SlowConsumerPolicy is '{options.SlowConsumerPolicy}'; accepted: Disconnect, Drop, Wait.");
        }

        return ValidateOptionsResult.Success;
    }
}
