using System.Diagnostics.CodeAnalysis;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Transport.Hosting.Internal.Middleware;

/// <summary>One name from <c>AddConnectionMiddleware</c>: how to bind, check and create an element of a <c>Middleware</c> list.</summary>
internal abstract class ConnectionMiddlewareRegistration(string name, Type middlewareType)
{
    public string Name { get; } = name;

    public Type MiddlewareType { get; } = middlewareType;

    public bool StreamOnly => Attribute.IsDefined(MiddlewareType, typeof(StreamTransportOnlyAttribute));

    /// <summary>
    /// Binds and validates the element's options; returns the element's factory, or null after adding to
    /// <paramref name="failures"/> messages that start with <paramref name="key"/>.
    /// </summary>
    public abstract Func<ConnectionDelegate, ConnectionDelegate>? Prepare(IConfigurationSection element, ConnectionMiddlewareContext context, string key, List<string> failures);
}

internal sealed class TypedMiddlewareRegistration<
    [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TMiddleware,
    [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] TOptions>(
    string name, Action<IConfiguration, TOptions> bind) : ConnectionMiddlewareRegistration(name, typeof(TMiddleware))
    where TMiddleware : class, IConnectionMiddleware<TOptions>
    where TOptions : class, new()
{
    public override Func<ConnectionDelegate, ConnectionDelegate>? Prepare(IConfigurationSection element, ConnectionMiddlewareContext context, string key, List<string> failures)
    {
        var options = new TOptions();
        try
        {
            bind(element, options);
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or ArgumentException)
        {
            // The binder's message names the full key and the value it could not convert.
            failures.Add($"{key} ('{Name}'): {ex.Message}");
            return null;
        }

        bool valid = true;
        foreach (IValidateOptions<TOptions> validator in context.Services.GetServices<IValidateOptions<TOptions>>())
        {
            ValidateOptionsResult result = validator.Validate(key, options);
            if (result.Failed)
            {
                valid = false;
                failures.AddRange(result.Failures?.Select(f => $"{key} ('{Name}'): {f}") ?? [$"{key} ('{Name}'): {result.FailureMessage}"]);
            }
        }

        if (!valid)
        {
            return null;
        }

        TMiddleware middleware = context.Services.GetRequiredService<TMiddleware>();
        return next => middleware.Create(next, options, context);
    }
}

internal sealed class DelegateMiddlewareRegistration(string name, Func<ConnectionDelegate, ConnectionDelegate> middleware)
    : ConnectionMiddlewareRegistration(name, typeof(DelegateMiddlewareRegistration))
{
    public override Func<ConnectionDelegate, ConnectionDelegate>? Prepare(IConfigurationSection element, ConnectionMiddlewareContext context, string key, List<string> failures) =>
        middleware;
}
