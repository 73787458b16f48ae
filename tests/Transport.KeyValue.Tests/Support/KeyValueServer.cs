using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Transport.Hosting;
using Transport.Protocols.KeyValue;

namespace Transport.KeyValue.Tests;

/// <summary>The key-value protocol on one transport, through the public test kit.</summary>
internal static class KeyValueServer
{
    public static Task<TransportTestServer> StartAsync(TestTransport transport, int maxRequestSize = 512 * 1024,
        int pubSubOutputLimit = 32 * 1024 * 1024, long? maxWriteBufferSize = null, TimeProvider? expiryClock = null) =>
        TransportTestServer.StartAsync(b =>
        {
            var options = new KeyValueProtocolOptions { MaxRequestSize = maxRequestSize, PubSubOutputLimit = pubSubOutputLimit };
            b.Host.Services.AddSingleton(options);
            if (expiryClock is not null)
            {
                // Only the protocol's clock: the engine's timers (shutdown deadline) keep the real one.
                b.Host.Services.AddSingleton(sp => new KeyValueProtocol(options, expiryClock, sp.GetService<ConnectionRegistry>(), sp.GetService<ILogger<KeyValueProtocol>>()));
            }

            b.Transport.AddProtocol<KeyValueProtocol>("kv").Listen(b.ListenUrl(transport), "kv", limits => limits.MaxWriteBufferSize = maxWriteBufferSize);
        });

    public static string NewTempDirectory() =>
        Path.Combine(Path.GetTempPath(), "transport-tests", Guid.NewGuid().ToString("N")[..12]);
}
