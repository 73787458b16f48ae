using Microsoft.Extensions.DependencyInjection;
using Transport.Hosting;
using Transport.Protocols.Echo;

namespace Transport.Tests;

/// <summary>The echo protocol on one transport, through the public test kit.</summary>
internal static class EchoServer
{
    public static Task<TransportTestServer> StartAsync(TestTransport transport, Action<TransportLimits>? limits = null) =>
        TransportTestServer.StartAsync(b => b.Transport.AddProtocol<EchoProtocol>("echo").Listen(b.ListenUrl(transport), "echo", limits));

    public static string NewTempDirectory() =>
        Path.Combine(Path.GetTempPath(), "transport-tests", Guid.NewGuid().ToString("N")[..12]);
}
