using System.Globalization;
using Microsoft.Extensions.Options;

namespace Transport.Hosting.Internal;

/// <summary>Fails the host at start on a registry option it cannot use, naming the key and the value.</summary>
internal sealed class ConnectionRegistryOptionsValidator(TransportConfigurationPath path) : IValidateOptions<ConnectionRegistryOptions>
{
    public ValidateOptionsResult Validate(string? name, ConnectionRegistryOptions options)
    {
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
