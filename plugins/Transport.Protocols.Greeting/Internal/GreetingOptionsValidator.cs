using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Transport.Protocols.Greeting.Internal;

/// <summary>Fails the host at start on a greeting option it cannot use, naming the full key, the value and what is accepted.</summary>
/// <param name="path">Where the options come from: the configuration section's path, or the type's name when set in code.</param>
/// <param name="section">The section bound, whose values are checked for their type first; null when set in code.</param>
internal sealed class GreetingOptionsValidator(string path, IConfiguration? section) : IValidateOptions<GreetingOptions>
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

    public ValidateOptionsResult Validate(string? name, GreetingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (section is not null)
        {
            failures.AddRange(Schema.CheckValues(section));
        }

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

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>The check the protocol makes when it is created by hand, with the same messages.</summary>
    public static void ThrowIfInvalid(GreetingOptions options)
    {
        ValidateOptionsResult result = new GreetingOptionsValidator(nameof(GreetingOptions), null).Validate(null, options);
        if (result.Failed)
        {
            throw new OptionsValidationException(nameof(GreetingOptions), typeof(GreetingOptions), result.Failures);
        }
    }

    private string Key(string name) => path.Length == 0 ? name : path + ":" + name;

    private void AtLeast(string name, long value, long minimum, List<string> failures)
    {
        if (value < minimum)
        {
            failures.Add($"{Key(name)} is {value.ToString(CultureInfo.InvariantCulture)}; it must be at least {minimum.ToString(CultureInfo.InvariantCulture)}.");
        }
    }

    private void Positive(string name, TimeSpan value, List<string> failures)
    {
        if (value <= TimeSpan.Zero)
        {
            failures.Add($"{Key(name)} is {value.ToString("c", CultureInfo.InvariantCulture)}; it must be positive.");
        }
    }
}
