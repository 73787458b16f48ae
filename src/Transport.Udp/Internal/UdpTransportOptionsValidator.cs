using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Transport.Udp.Internal;

/// <summary>Fails the host at start on a UDP option it cannot use, naming the full key and the value.</summary>
/// <param name="path">Where the options come from: the configuration section's path, or the type's name when set in code.</param>
/// <param name="section">The section bound, whose values are checked for their type first; null when set in code.</param>
internal sealed class UdpTransportOptionsValidator(string path, IConfiguration? section) : ConfiguredOptionsValidator<UdpTransportOptions>(path, section, UdpTransportOptionsValidator.Schema)
{
    public static readonly ConfigurationSchema Schema = new ConfigurationSchema()
        .WholeNumber(nameof(UdpTransportOptions.MaxDatagramSize))
        .WholeNumber(nameof(UdpTransportOptions.MaxSessions))
        .WholeNumber(nameof(UdpTransportOptions.MaxQueuedDatagrams))
        .Duration(nameof(UdpTransportOptions.SessionIdleTimeout))
        .WholeNumber(nameof(UdpTransportOptions.SocketReceiveBufferSize))
        .TrueOrFalse(nameof(UdpTransportOptions.InlineScheduling))
        .TrueOrFalse(nameof(UdpTransportOptions.ReturnMemoryWhenIdle));

    protected override void Check(UdpTransportOptions options, ICollection<string> failures)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(failures);
        // 65527: the largest payload over IPv6 without jumbograms; IPv4's is 65507, and the kernel refuses larger sends.
        if (options.MaxDatagramSize is < 1 or > 65527)
        {
            failures.Add(Invalid(nameof(options.MaxDatagramSize), options.MaxDatagramSize, "must be from 1 to 65527 (bytes)"));
        }

        if (options.MaxSessions < 1)
        {
            failures.Add(Invalid(nameof(options.MaxSessions), options.MaxSessions, "must be at least 1"));
        }

        if (options.MaxQueuedDatagrams < 1)
        {
            failures.Add(Invalid(nameof(options.MaxQueuedDatagrams), options.MaxQueuedDatagrams, "must be at least 1"));
        }

        if (options.SessionIdleTimeout <= TimeSpan.Zero)
        {
            failures.Add(Invalid(nameof(options.SessionIdleTimeout), options.SessionIdleTimeout, "must be positive"));
        }

        if (options.SocketReceiveBufferSize < 1)
        {
            failures.Add(Invalid(nameof(options.SocketReceiveBufferSize), options.SocketReceiveBufferSize, "must be a positive number of bytes"));
        }
    }
}
