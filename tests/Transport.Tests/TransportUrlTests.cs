using System.Net;
using System.Net.Sockets;

namespace Transport.Tests;

public sealed class TransportUrlTests
{
    [Theory]
    [InlineData("tcp://127.0.0.1:7007", "127.0.0.1:7007")]
    [InlineData("tcp://[::1]:0", "[::1]:0")]
    [InlineData("TCP://10.1.2.3:65535/", "10.1.2.3:65535")]
    public void Tcp_IpAddress_ParsesToOneIpEndPoint(string url, string expected)
    {
        EndPoint endpoint = Assert.Single(TransportUrl.ParseListenEndPoints(url));

        Assert.Equal(expected, Assert.IsType<IPEndPoint>(endpoint).ToString());
    }

    [Fact]
    public void Tcp_Localhost_ListensOnBothLoopbacks_ButOnlyIPv4ForPortZero()
    {
        Assert.Equal(
            [new IPEndPoint(IPAddress.Loopback, 7007), new IPEndPoint(IPAddress.IPv6Loopback, 7007)],
            TransportUrl.ParseListenEndPoints("tcp://localhost:7007"));
        Assert.Equal([new IPEndPoint(IPAddress.Loopback, 0)], TransportUrl.ParseListenEndPoints("tcp://localhost:0"));
    }

    [Fact]
    public void Tcp_Star_ListensOnAnyAddress()
    {
        EndPoint endpoint = Assert.Single(TransportUrl.ParseListenEndPoints("tcp://*:7007"));

        Assert.Equal(new IPEndPoint(IPAddress.IPv6Any, 7007), endpoint);
    }

    [Fact]
    public void Connect_HostName_GivesDnsEndPoint_ButStarIsRejected()
    {
        Assert.Equal(new DnsEndPoint("example.org", 7), TransportUrl.ParseConnectEndPoint("tcp://example.org:7"));
        Assert.Throws<FormatException>(() => TransportUrl.ParseConnectEndPoint("tcp://*:7"));
    }

    [Theory]
    [InlineData("unix:/run/app.sock")]
    [InlineData("unix:///run/app.sock")]
    public void Unix_AbsolutePath(string url)
    {
        EndPoint endpoint = Assert.Single(TransportUrl.ParseListenEndPoints(url));

        Assert.Equal("/run/app.sock", Assert.IsType<UnixDomainSocketEndPoint>(endpoint).ToString());
        Assert.Equal("unix:/run/app.sock", TransportUrl.Format(endpoint));
    }

    [Fact]
    public void Memory_Name_RoundTrips()
    {
        EndPoint endpoint = TransportUrl.ParseConnectEndPoint("memory://Echo");

        Assert.Equal(new MemoryEndPoint("echo"), endpoint);
        Assert.Equal("memory://Echo", TransportUrl.Format(endpoint));
    }

    [Theory]
    [InlineData("tcp://::1:7007", "in brackets")]
    [InlineData("tcp://127.0.0.1:-1", "is not a number from 0 to 65535")]
    [InlineData("tcp:127.0.0.1:7007", "expected tcp://HOST:PORT")]
    [InlineData("unix://host/path", "expected unix:/absolute/path")]
    [InlineData("memory://a/b", "expected memory://NAME")]
    public void Malformed_ThrowsFormatExceptionSayingWhy(string url, string why)
    {
        FormatException ex = Assert.Throws<FormatException>(() => TransportUrl.ParseListenEndPoints(url));

        Assert.Contains(why, ex.Message, StringComparison.Ordinal);
    }
}
