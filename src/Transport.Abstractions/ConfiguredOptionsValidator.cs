using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Transport;

/// <summary>
/// The validator shape every Transport options class uses: values of the wrong type first (from
/// <see cref="ConfigurationSchema.CheckValues"/>), then the range checks of <see cref="Check"/>, each failure one message
/// naming the full key, the value and what is accepted (<c>Transport:Sockets:Backlog is 0; it must be from 1 to 65535.</c>).
/// </summary>
/// <typeparam name="TOptions">The options class.</typeparam>
public abstract class ConfiguredOptionsValidator<TOptions> : IValidateOptions<TOptions>
    where TOptions : class
{
    private readonly string _path;
    private readonly IConfiguration? _section;
    private readonly ConfigurationSchema _schema;

    /// <summary>Creates the validator.</summary>
    /// <param name="path">Where the options come from: the section's path, or the options type's name when set in code.</param>
    /// <param name="section">The section bound, whose values are checked for their type; null when set in code.</param>
    /// <param name="schema">The section's keys.</param>
    protected ConfiguredOptionsValidator(string path, IConfiguration? section, ConfigurationSchema schema)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(schema);
        (_path, _section, _schema) = (path, section, schema);
    }

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, TOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (_section is not null)
        {
            failures.AddRange(_schema.CheckValues(_section));
        }

        Check(options, failures);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Throws what the host would report at start: for a component created by hand, with the same messages.</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="OptionsValidationException">An option is out of range.</exception>
    public void ThrowIfInvalid(TOptions options)
    {
        ValidateOptionsResult result = Validate(null, options);
        if (result.Failed)
        {
            throw new OptionsValidationException(typeof(TOptions).Name, typeof(TOptions), result.Failures);
        }
    }

    /// <summary>Adds a message for each option out of range.</summary>
    /// <param name="options">The options.</param>
    /// <param name="failures">Where to add the messages.</param>
    protected abstract void Check(TOptions options, ICollection<string> failures);

    /// <summary>The full key of an option.</summary>
    /// <param name="name">The option's name.</param>
    /// <returns><c>path:name</c>.</returns>
    protected string Key(string name) => _path.Length == 0 ? name : _path + ":" + name;

    /// <summary>The message for a number out of range.</summary>
    /// <param name="name">The option's name.</param>
    /// <param name="value">Its value.</param>
    /// <param name="rule">What is accepted, e.g. <c>must be at least 1</c>.</param>
    /// <returns>The message.</returns>
    protected string Invalid(string name, long value, string rule) =>
        $"{Key(name)} is {value.ToString(CultureInfo.InvariantCulture)}; it {rule}.";

    /// <summary>The message for a time span out of range.</summary>
    /// <param name="name">The option's name.</param>
    /// <param name="value">Its value.</param>
    /// <param name="rule">What is accepted, e.g. <c>must be positive</c>.</param>
    /// <returns>The message.</returns>
    protected string Invalid(string name, TimeSpan value, string rule) =>
        $"{Key(name)} is {value.ToString("c", CultureInfo.InvariantCulture)}; it {rule}.";
}
