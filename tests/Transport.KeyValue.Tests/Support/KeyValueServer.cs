using Microsoft.Extensions.DependencyInjection;
using Transport.Protocols.KeyValue;

namespace Transport.KeyValue.Tests;

/// <summary>The key-value protocol on one transport, through the public test kit.</summary>
internal static class KeyValueServer
{
    public static Task<TransportTestServer> StartAsync(TestTransport transport, int maxRequestSize = 512 * 1024) =>
        TransportTestServer.StartAsync(b =>
        {
            b.Host.Services.AddSingleton(new KeyValueProtocolOptions { MaxRequestSize = maxRequestSize });
            b.Transport.AddProtocol<KeyValueProtocol>("kv").Listen(b.ListenUrl(transport), "kv");
        });

    public static string NewTempDirectory() =>
        Path.Combine(Path.GetTempPath(), "transport-tests", Guid.NewGuid().ToString("N")[..12]);
}
