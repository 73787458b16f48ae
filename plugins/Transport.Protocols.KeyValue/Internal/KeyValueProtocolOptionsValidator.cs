using Microsoft.Extensions.Configuration;

namespace Transport.Protocols.KeyValue.Internal;

/// <summary>Fails the host at start on a key-value option it cannot use, naming the full key, the value and what is accepted.</summary>
/// <param name="path">Where the options come from: the configuration section's path, or the type's name when set in code.</param>
/// <param name="section">The section bound, whose values are checked for their type first; null when set in code.</param>
internal sealed class KeyValueProtocolOptionsValidator(string path, IConfiguration? section) : ConfiguredOptionsValidator<KeyValueProtocolOptions>(path, section, KeyValueProtocolOptionsValidator.Schema)
{
    public static readonly ConfigurationSchema Schema = new ConfigurationSchema()
        .WholeNumber(nameof(KeyValueProtocolOptions.MaxRequestSize))
        .WholeNumber(nameof(KeyValueProtocolOptions.PubSubOutputLimit));

    protected override void Check(KeyValueProtocolOptions options, ICollection<string> failures)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(failures);
        AtLeast1KiB(nameof(options.MaxRequestSize), options.MaxRequestSize, failures);
        AtLeast1KiB(nameof(options.PubSubOutputLimit), options.PubSubOutputLimit, failures);
    }

    private void AtLeast1KiB(string name, int value, ICollection<string> failures)
    {
        if (value < 1024)
        {
            failures.Add(Invalid(name, value, "must be at least 1024 (bytes)"));
        }
    }
}
