using Microsoft.Extensions.DependencyInjection;
using Transport.Hosting;
using Transport.Protocols.KeyValue;

namespace Transport.KeyValue.Tests;

/// <summary>The key-value protocol on one transport, through the public test kit.</summary>
internal static class KeyValueServer
{
    public static Task<TransportTestServer> StartAsync(TestTransport transport, int maxRequestSize = 512 * 1024,
        int pubSubOutputLimit = 32 * 1024 * 1024, long? maxWriteBufferSize = null) =>
        TransportTestServer.StartAsync(b =>
        {
            b.Host.Services.AddSingleton(new KeyValueProtocolOptions { MaxRequestSize = maxRequestSize, PubSubOutputLimit = pubSubOutputLimit });
            b.Transport.AddProtocol<KeyValueProtocol>("kv").Listen(b.ListenUrl(transport), "kv", limits => limits.MaxWriteBufferSize = maxWriteBufferSize);
        });

    public static string NewTempDirectory() =>
        Path.Combine(Path.GetTempPath(), "transport-tests", Guid.NewGuid().ToString("N")[..12]);
}
