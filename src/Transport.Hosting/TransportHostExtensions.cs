using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Transport.Hosting.Internal;

namespace Transport.Hosting;

/// <summary>
/// Starts and runs a host so that a startup failure an operator fixes (a bad configuration value, an address in use)
/// is one line on standard error and exit code 1, not an unhandled exception with its stack trace.
/// </summary>
public static class TransportHostExtensions
{
    /// <summary>
    /// Starts <paramref name="host"/>. When the start fails because of the configuration (every option is validated
    /// first) or because an endpoint cannot be bound, writes the message, one line, to standard error, logs the
    /// exception at Debug, and returns <see langword="false"/>; nothing stays bound. Other exceptions propagate.
    /// </summary>
    /// <remarks>
    /// The Transport server binds its endpoints before the host starts, so that a bind error is reported here rather
    /// than by the host; it starts accepting when the host starts it.
    /// </remarks>
    /// <param name="host">The host.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <returns>Whether the host started.</returns>
    public static async Task<bool> TryStartAsync(this IHost host, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        try
        {
            // The options and the endpoints first, outside the host: a bad value or a busy port is reported here once,
            // where the host would log it as an error with its stack trace. Accepting starts with the host.
            host.Services.GetService<IStartupValidator>()?.Validate();
            if (host.Services.GetService<TransportServer>() is { } server)
            {
                await server.BindAsync(cancellationToken).ConfigureAwait(false);
            }

            await host.StartAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (StartupFailure(ex) is { } message)
        {
            await Console.Error.WriteLineAsync(message).ConfigureAwait(false);
            TransportLog.StartFailed(host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Transport.Hosting"), message, ex);
            return false;
        }
    }

    /// <summary>
    /// Runs <paramref name="host"/> until it shuts down (Ctrl+C, SIGTERM); a startup failure is reported as
    /// <see cref="TryStartAsync"/> does.
    /// </summary>
    /// <param name="host">The host.</param>
    /// <param name="cancellationToken">Stops the host.</param>
    /// <returns>The process exit code: 0 after a clean shutdown, 1 when the host could not start.</returns>
    public static async Task<int> RunTransportAsync(this IHost host, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (!await host.TryStartAsync(cancellationToken).ConfigureAwait(false))
        {
            return 1;
        }

        await host.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
        return 0;
    }

    private static string? StartupFailure(Exception ex) => ex switch
    {
        OptionsValidationException options => OneLine(options.Message),
        AggregateException aggregate when aggregate.InnerExceptions.All(e => StartupFailure(e) is not null) =>
            string.Join(" ", aggregate.InnerExceptions.Select(e => StartupFailure(e))),
        AddressInUseException or TransportStartupException => OneLine(ex.Message),
        _ => null,
    };

    private static string OneLine(string message) => message.ReplaceLineEndings(" ");
}
