using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace Transport.Protocols.Greeting.Internal;

/// <summary>Fails the host at start on a greeting option it cannot use, naming the full key, the value and what is accepted.</summary>
/// <param name="path">Where the options come from: the configuration section's path, or the type's name when set in code.</param>
/// <param name="section">The section bound, whose values are checked for their type first; null when set in code.</param>
internal sealed class GreetingOptionsValidator(string path, IConfiguration? section) : ConfiguredOptionsValidator<GreetingOptions>(path, section, GreetingOptionsValidator.Schema)
{
    public static readonly ConfigurationSchema Schema = new ConfigurationSchema()
        .Text(nameof(GreetingOptions.Greeting))
        .Text(nameof(GreetingOptions.Byline))
        .Text(nameof(GreetingOptions.Author))
        .Text(nameof(GreetingOptions.AuthorUrl))
        .Text(nameof(GreetingOptions.ServerName))
        .WholeNumber(nameof(GreetingOptions.MaxRequestLineLength))
        .WholeNumber(nameof(GreetingOptions.MaxRequestHeaderCount))
        .WholeNumber(nameof(GreetingOptions.MaxRequestHeadersTotalSize))
        .WholeNumber(nameof(GreetingOptions.MaxRequestBodySize), is64Bit: true)
        .Duration(nameof(GreetingOptions.RequestHeadersTimeout))
        .TrueOrFalse(nameof(GreetingOptions.AllowKeepAlive))
        .Duration(nameof(GreetingOptions.KeepAliveTimeout))
        .WholeNumber(nameof(GreetingOptions.MaxRequestsPerConnection));

    protected override void Check(GreetingOptions options, ICollection<string> failures)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(failures);
        AtLeast(nameof(options.MaxRequestLineLength), options.MaxRequestLineLength, 16, failures);
        AtLeast(nameof(options.MaxRequestHeaderCount), options.MaxRequestHeaderCount, 1, failures);
        AtLeast(nameof(options.MaxRequestHeadersTotalSize), options.MaxRequestHeadersTotalSize, 64, failures);
        AtLeast(nameof(options.MaxRequestBodySize), options.MaxRequestBodySize, 0, failures);
        AtLeast(nameof(options.MaxRequestsPerConnection), options.MaxRequestsPerConnection, 1, failures);
        Positive(nameof(options.RequestHeadersTimeout), options.RequestHeadersTimeout, failures);
        Positive(nameof(options.KeepAliveTimeout), options.KeepAliveTimeout, failures);
        if (string.IsNullOrWhiteSpace(options.ServerName) || options.ServerName.Any(c => c < 0x20 || c > 0x7E))
        {
            failures.Add($"{Key(nameof(options.ServerName))} is '{options.ServerName}'; it must be printable ASCII without line breaks.");
        }
    }

    private void AtLeast(string name, long value, long minimum, ICollection<string> failures)
    {
        if (value < minimum)
        {
            failures.Add(Invalid(name, value, "must be at least " + minimum.ToString(CultureInfo.InvariantCulture)));
        }
    }

    private void Positive(string name, TimeSpan value, ICollection<string> failures)
    {
        if (value <= TimeSpan.Zero)
        {
            failures.Add(Invalid(name, value, "must be positive"));
        }
    }
}
