using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Transport.Sockets.Internal;

/// <summary>Fails the host at start on a socket option it cannot use, naming the full key and the value.</summary>
/// <param name="path">Where the options come from: the configuration section's path, or the type's name when set in code.</param>
/// <param name="section">The section bound, whose values are checked for their type first; null when set in code.</param>
internal sealed class SocketTransportOptionsValidator(string path, IConfiguration? section) : ConfiguredOptionsValidator<SocketTransportOptions>(path, section, SocketTransportOptionsValidator.Schema)
{
    public static readonly ConfigurationSchema Schema = new ConfigurationSchema()
        .TrueOrFalse(nameof(SocketTransportOptions.NoDelay))
        .WholeNumber(nameof(SocketTransportOptions.Backlog))
        .TrueOrFalse(nameof(SocketTransportOptions.WaitForDataBeforeAllocatingBuffer))
        .TrueOrFalse(nameof(SocketTransportOptions.InlineScheduling))
        .TrueOrFalse(nameof(SocketTransportOptions.InlineCompletions))
        .TrueOrFalse(nameof(SocketTransportOptions.PreferTransportIoThreads))
        .WholeNumber(nameof(SocketTransportOptions.IoThreadCount))
        .Duration(nameof(SocketTransportOptions.DrainTimeout))
        .Duration(nameof(SocketTransportOptions.MemoryPoolTrimInterval))
        .TrueOrFalse(nameof(SocketTransportOptions.ReturnMemoryWhenIdle));

    protected override void Check(SocketTransportOptions options, ICollection<string> failures)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(failures);
        if (options.Backlog is < 1 or > 65535)
        {
            failures.Add(Invalid(nameof(options.Backlog), options.Backlog, "must be from 1 to 65535"));
        }

        if (options.IoThreadCount is < 0 or > 256)
        {
            failures.Add(Invalid(nameof(options.IoThreadCount), options.IoThreadCount, "must be from 0 (the runtime's choice) to 256"));
        }

        if (options.DrainTimeout < TimeSpan.Zero)
        {
            failures.Add(Invalid(nameof(options.DrainTimeout), options.DrainTimeout, "must not be negative"));
        }

        if (options.MemoryPoolTrimInterval <= TimeSpan.Zero)
        {
            failures.Add(Invalid(nameof(options.MemoryPoolTrimInterval), options.MemoryPoolTrimInterval, "must be positive"));
        }
    }
}
