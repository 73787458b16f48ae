using Microsoft.Extensions.Configuration;

namespace Transport.Sockets;

/// <summary>
/// The process-wide switch that runs .NET's socket completions on its epoll threads instead of queueing each one
/// to the thread pool. With the socket transport's inline scheduling, the protocol then runs on those threads
/// too: the fastest setting for protocols that never block (echo, the greeting server, RESP), and a hazard for
/// one that does (it stalls every socket served by that thread).
/// </summary>
/// <remarks>
/// .NET reads the switch (<c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS</c>) once, at the first socket
/// operation of the process, so it cannot be an option of the transport: call this at the start of <c>Main</c>,
/// before the host (or anything else) opens a socket.
/// </remarks>
public static class InlineSocketCompletions
{
    /// <summary>The configuration key: <c>Transport:Sockets:InlineCompletions</c>.</summary>
    public const string ConfigurationKey = "Transport:Sockets:InlineCompletions";

    /// <summary>Turns the switch on for this process when <see cref="ConfigurationKey"/> is <see langword="true"/>.</summary>
    /// <param name="configuration">The application's configuration.</param>
    /// <returns>Whether the switch is on.</returns>
    public static bool EnableIfConfigured(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        if (configuration.GetValue<bool>(ConfigurationKey))
        {
            Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
        }

        return Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") == "1";
    }
}
