using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Transport.Hosting;

namespace Transport.Tests;

/// <summary>
/// The PROXY protocol on a UDP endpoint, over a real socket on loopback: a version 2 header at the start of each
/// datagram (as dnsdist and other UDP proxies send it) is stripped, the session is keyed on the client's address in it,
/// replies go back to the proxy, and datagrams the policy refuses are dropped and counted.
/// </summary>
public sealed class ProxyProtocolUdpTests
{
    private static readonly IPEndPoint Client = new(IPAddress.Parse("203.0.113.7"), 51234);
    private static readonly IPEndPoint OtherClient = new(IPAddress.Parse("203.0.113.8"), 51234);
    private static readonly IPEndPoint ClientV6 = new(IPAddress.Parse("2001:db8::7"), 40000);
    private static readonly IPEndPoint Server = new(IPAddress.Parse("198.51.100.1"), 53);
    private static readonly IPEndPoint ServerV6 = new(IPAddress.Parse("2001:db8::1"), 53);

    [Fact]
    public async Task HeaderPerDatagram_IsStripped_SessionsAreKeyedOnTheClientsAddress_RepliesGoToTheProxy()
    {
        await using TransportTestServer server = await StartAsync(ProxyProtocolMode.Required, ["127.0.0.1"]);
        using Socket proxy = Proxy();

        await SendAsync(proxy, server, Header(Client, Server), "one");
        string info = await ReceiveAsync(proxy);
        Assert.Equal($"remote=udp://203.0.113.7:51234 local=udp://198.51.100.1:53 socket-remote=udp://{proxy.LocalEndPoint} socket-local={server.EndPoint} v=2 local=False tlvs=", info);
        Assert.Equal("one", await ReceiveAsync(proxy)); // the payload, without the header's bytes

        // The same client again: its session, so no new greeting line.
        await SendAsync(proxy, server, Header(Client, Server), "two");
        Assert.Equal("two", await ReceiveAsync(proxy));

        // Another client through the same proxy socket: a session of its own.
        await SendAsync(proxy, server, Header(OtherClient, Server), "three");
        Assert.StartsWith("remote=udp://203.0.113.8:51234 ", await ReceiveAsync(proxy), StringComparison.Ordinal);
        Assert.Equal("three", await ReceiveAsync(proxy));

        // IPv6 clients through an IPv4 proxy, and a checksummed header.
        await SendAsync(proxy, server, ProxyProtocolHeader.CreateV2(ClientV6, ServerV6, addChecksum: true, isDatagram: true).ToArray(), "four");
        Assert.StartsWith("remote=udp://[2001:db8::7]:40000 local=udp://[2001:db8::1]:53 ", await ReceiveAsync(proxy), StringComparison.Ordinal);
        Assert.Equal("four", await ReceiveAsync(proxy));
    }

    [Fact]
    public async Task LocalHeader_IsTheProxysOwnHealthCheck_ServedWithTheSocketsAddresses()
    {
        await using TransportTestServer server = await StartAsync(ProxyProtocolMode.Required, ["127.0.0.1"]);
        using Socket proxy = Proxy();

        await SendAsync(proxy, server, ProxyProtocolHeader.CreateV2Local().ToArray(), "ping");

        Assert.Equal($"remote=udp://{proxy.LocalEndPoint} local={server.EndPoint} socket-remote=udp://{proxy.LocalEndPoint} socket-local={server.EndPoint} v=2 local=True tlvs=",
            await ReceiveAsync(proxy));
        Assert.Equal("ping", await ReceiveAsync(proxy));
    }

    public static TheoryData<string, string> Refused => new()
    {
        { "missing", "proxy_protocol_missing" },
        { "bad-checksum", "proxy_protocol_checksum_mismatch" },
        { "stream-addresses", "proxy_protocol_malformed" },
        { "truncated", "proxy_protocol_malformed" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public async Task RefusedDatagrams_AreDroppedAndCounted_AndTheEndpointServesTheNext(string kind, string outcome)
    {
        await using TransportTestServer server = await StartAsync(ProxyProtocolMode.Required, ["127.0.0.1"]);
        using var datagrams = new MetricCollector<long>(server.Services.GetRequiredService<IMeterFactory>(), "Transport", "transport.udp.datagrams");
        using Socket proxy = Proxy();
        byte[] good = Header(Client, Server);
        byte[] bad = kind switch
        {
            "missing" => [],
            "bad-checksum" => Corrupt(ProxyProtocolHeader.CreateV2(Client, Server, addChecksum: true, isDatagram: true).ToArray()),
            "stream-addresses" => ProxyProtocolHeader.CreateV2(Client, Server).ToArray(),
            _ => good[..20],
        };

        await SendAsync(proxy, server, bad, kind == "truncated" ? "" : "refused");
        await SendAsync(proxy, server, good, "served");

        // Had the refused datagram been served, its session's line would have come first.
        Assert.StartsWith("remote=udp://203.0.113.7:51234 ", await ReceiveAsync(proxy), StringComparison.Ordinal);
        Assert.Equal("served", await ReceiveAsync(proxy));
        await datagrams.WaitForMeasurementsAsync(2).DefaultTimeout();
        Assert.Contains(datagrams.GetMeasurementSnapshot(), m => (string?)m.Tags["transport.udp.outcome"] == outcome);
    }

    [Fact]
    public async Task HeaderFromAnUntrustedSender_IsDropped_WhileOptionalServesItsPlainDatagrams()
    {
        await using TransportTestServer server = await StartAsync(ProxyProtocolMode.Optional, ["10.0.0.0/8"]);
        using var datagrams = new MetricCollector<long>(server.Services.GetRequiredService<IMeterFactory>(), "Transport", "transport.udp.datagrams");
        using Socket sender = Proxy();

        await SendAsync(sender, server, Header(Client, Server), "spoofed");
        await SendAsync(sender, server, [], "plain");

        Assert.Equal($"remote=udp://{sender.LocalEndPoint} local={server.EndPoint} v=none", await ReceiveAsync(sender));
        Assert.Equal("plain", await ReceiveAsync(sender));
        await datagrams.WaitForMeasurementsAsync(2).DefaultTimeout();
        Assert.Contains(datagrams.GetMeasurementSnapshot(), m => (string?)m.Tags["transport.udp.outcome"] == "proxy_protocol_untrusted");
    }

    [Fact]
    public async Task UdpWithoutTrustedProxies_FailsAtStart_NamingTheKey()
    {
        var ex = await ConfiguredHost.StartFailsAsync(new()
        {
            ["Transport:Endpoints:dns:Url"] = "udp://127.0.0.1:0",
            ["Transport:Endpoints:dns:Protocol"] = "echo",
            ["Transport:Endpoints:dns:ProxyProtocol:Mode"] = "Required",
        });

        Assert.Contains("Transport:Endpoints:dns:ProxyProtocol:Mode is 'Required' but Transport:Endpoints:dns:ProxyProtocol:TrustedProxies is empty", ex.Message, StringComparison.Ordinal);
    }

    private static byte[] Header(IPEndPoint client, IPEndPoint server) => ProxyProtocolHeader.CreateV2(client, server, isDatagram: true).ToArray();

    private static byte[] Corrupt(byte[] header)
    {
        header[^1] ^= 0xFF; // the checksum's last byte
        return header;
    }

    private static Task<TransportTestServer> StartAsync(ProxyProtocolMode mode, string[] trusted) =>
        TransportTestServer.StartAsync(b => b.Transport.AddProtocol<ProxyProtocolTests.AddressesProtocol>("addresses").Listen(b.ListenUrl(TestTransport.Udp), "addresses", endpoint =>
        {
            endpoint.ProxyProtocol = new TransportProxyProtocolOptions { Mode = mode };
            endpoint.ProxyProtocol.TrustedProxies.AddRange(trusted);
        }));

    private static Socket Proxy()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return socket;
    }

    private static async Task SendAsync(Socket proxy, TransportTestServer server, byte[] header, string payload)
    {
        byte[] datagram = [.. header, .. Encoding.ASCII.GetBytes(payload)];
        await proxy.SendToAsync(datagram, SocketFlags.None, ((UdpEndPoint)server.EndPoint).Address).DefaultTimeout();
    }

    private static async Task<string> ReceiveAsync(Socket proxy)
    {
        var buffer = new byte[2048];
        int received = await proxy.ReceiveAsync(buffer, SocketFlags.None).DefaultTimeout();
        return Encoding.ASCII.GetString(buffer, 0, received).TrimEnd('\n');
    }
}
