using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Transport.Protocols.KeyValue.Internal;

/// <summary>Fails the host at start on a key-value option it cannot use, naming the full key, the value and what is accepted.</summary>
/// <param name="path">Where the options come from: the configuration section's path, or the type's name when set in code.</param>
/// <param name="section">The section bound, whose values are checked for their type first; null when set in code.</param>
internal sealed class KeyValueProtocolOptionsValidator(string path, IConfiguration? section) : IValidateOptions<KeyValueProtocolOptions>
{
    public static readonly ConfigurationSchema Schema = new ConfigurationSchema()
        .WholeNumber(nameof(KeyValueProtocolOptions.MaxRequestSize))
        .WholeNumber(nameof(KeyValueProtocolOptions.PubSubOutputLimit));

    public ValidateOptionsResult Validate(string? name, KeyValueProtocolOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (section is not null)
        {
            failures.AddRange(Schema.CheckValues(section));
        }

        AtLeast1KiB(nameof(options.MaxRequestSize), options.MaxRequestSize, failures);
        AtLeast1KiB(nameof(options.PubSubOutputLimit), options.PubSubOutputLimit, failures);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>The check the protocol makes when it is created by hand, with the same messages.</summary>
    public static void ThrowIfInvalid(KeyValueProtocolOptions options)
    {
        ValidateOptionsResult result = new KeyValueProtocolOptionsValidator(nameof(KeyValueProtocolOptions), null).Validate(null, options);
        if (result.Failed)
        {
            throw new OptionsValidationException(nameof(KeyValueProtocolOptions), typeof(KeyValueProtocolOptions), result.Failures);
        }
    }

    private void AtLeast1KiB(string name, int value, List<string> failures)
    {
        if (value < 1024)
        {
            string key = path.Length == 0 ? name : path + ":" + name;
            failures.Add($"{key} is {value.ToString(CultureInfo.InvariantCulture)}; it must be at least 1024 (bytes).");
        }
    }
}
