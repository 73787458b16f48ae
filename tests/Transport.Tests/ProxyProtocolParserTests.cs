using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Transport.Framing.Tests;

namespace Transport.Tests;

/// <summary>The PROXY protocol reader and writer on their own: what the first bytes decide, strictness, bounds, TLVs, segments.</summary>
public sealed class ProxyProtocolParserTests
{
    private static readonly IPEndPoint ClientV4 = new(IPAddress.Parse("203.0.113.7"), 51234);
    private static readonly IPEndPoint ServerV4 = new(IPAddress.Parse("198.51.100.1"), 443);
    private static readonly IPEndPoint ClientV6 = new(IPAddress.Parse("2001:db8::7"), 40000);
    private static readonly IPEndPoint ServerV6 = new(IPAddress.Parse("2001:db8::1"), 8443);

    public static TheoryData<string> Headers => new()
    {
        "v1-tcp4", "v1-tcp6", "v1-unknown", "v2-ipv4", "v2-ipv6", "v2-unix", "v2-local", "v2-tlvs", "v2-udp",
    };

    [Theory]
    [MemberData(nameof(Headers))]
    public void WrittenHeader_ReadsBack_Whole_InSegments_AndWithDataAfterIt(string name)
    {
        ProxyProtocolHeader written = Create(name);
        byte[] bytes = [.. written.ToArray(), .. "after"u8];
        Assert.Equal(written.Length, bytes.Length - 5);

        for (int split = 0; split <= bytes.Length; split++)
        {
            ProxyProtocolReadResult result = ProxyProtocolHeader.TryRead(Segments.Of(bytes[..split], bytes[split..]));
            Assert.Equal(ProxyProtocolStatus.Complete, result.Status);
            Assert.Equal(written.Length, result.Length);
            ProxyProtocolHeader read = result.Header!;
            Assert.Equal(written.Version, read.Version);
            Assert.Equal(written.Command, read.Command);
            Assert.Equal(written.IsLocal, read.IsLocal);
            Assert.Equal(written.IsDatagram, read.IsDatagram);
            Assert.Equal(written.SourceEndPoint, read.SourceEndPoint);
            Assert.Equal(written.DestinationEndPoint, read.DestinationEndPoint);
            Assert.Equal(written.Tlvs.Select(t => (t.Type, t.Value.ToArray())), read.Tlvs.Where(t => t.Type != ProxyProtocolHeader.TlvCrc32c).Select(t => (t.Type, t.Value.ToArray())));
        }
    }

    [Fact]
    public void EveryShorterPrefix_OfAHeader_IsIncomplete()
    {
        foreach (string name in Headers)
        {
            byte[] bytes = Create(name).ToArray();
            for (int length = 0; length < bytes.Length; length++)
            {
                Assert.Equal(ProxyProtocolStatus.Incomplete, ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(bytes, 0, length)).Status);
            }
        }
    }

    [Theory]
    [InlineData("PING\r\n")]
    [InlineData("G")]
    [InlineData("PR0")]
    [InlineData("PROXY\r\n")]
    [InlineData("\r\n\r\nX")]
    [InlineData("\r\n\r\n\0\r\nQUIX")]
    public void BytesThatCannotStartAHeader_AreNotProxyProtocol_WithoutWaitingFor12(string text)
    {
        // SuperSocket's reader waited for 12 bytes before deciding: a 6-byte "PING\r\n" then stalled until a timeout.
        Assert.Equal(ProxyProtocolStatus.NotProxyProtocol, ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(text))).Status);
    }

    [Theory]
    [InlineData("P")]
    [InlineData("PROXY")]
    [InlineData("\r\n")]
    [InlineData("\r\n\r\n\0\r\nQUIT\n")]
    public void BytesThatMayStartAHeader_AreIncomplete(string text) =>
        Assert.Equal(ProxyProtocolStatus.Incomplete, ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(text))).Status);

    [Theory]
    [InlineData("PROXY TCP4 1 198.51.100.1 1 2\r\n")]
    [InlineData("PROXY TCP4 203.0.113.07 198.51.100.1 1 2\r\n")]
    [InlineData("PROXY TCP4 203.0.113.256 198.51.100.1 1 2\r\n")]
    [InlineData("PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n")]
    [InlineData("PROXY TCP6 203.0.113.7 2001:db8::1 1 2\r\n")]
    [InlineData("PROXY TCP6 fe80::1%eth0 2001:db8::1 1 2\r\n")]
    [InlineData("PROXY TCP4 203.0.113.7 198.51.100.1 65536 2\r\n")]
    [InlineData("PROXY TCP4 203.0.113.7 198.51.100.1 01 2\r\n")]
    [InlineData("PROXY TCP4 203.0.113.7 198.51.100.1 -1 2\r\n")]
    [InlineData("PROXY TCP4  203.0.113.7 198.51.100.1 1 2\r\n")]
    [InlineData("PROXY TCP4 203.0.113.7 198.51.100.1 1 2 \r\n")]
    [InlineData("PROXY TCP4 203.0.113.7 198.51.100.1 1\r\n")]
    [InlineData("PROXY TCP4 203.0.113.7 198.51.100.1 1 2\n")]
    [InlineData("PROXY UDP4 203.0.113.7 198.51.100.1 1 2\r\n")]
    [InlineData("PROXY TCP4 203.0.113.7 198.51.100.1 1 2\t\r\n")]
    public void StrictVersion1_RefusesWhatTheSpecificationDoesNot(string text)
    {
        ProxyProtocolReadResult result = ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(text)));
        Assert.Equal(ProxyProtocolStatus.Malformed, result.Status);
        Assert.NotNull(result.Error);
    }

    [Fact]
    public void Version1_WithoutCrlfIn107Bytes_IsTooLong_AndShorterIsStillIncomplete()
    {
        byte[] line = Encoding.ASCII.GetBytes("PROXY TCP6 " + new string('1', 200));
        Assert.Equal(ProxyProtocolStatus.Incomplete, ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(line, 0, 106)).Status);
        Assert.Equal(ProxyProtocolStatus.TooLong, ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(line, 0, 107)).Status);
    }

    [Fact]
    public void Version2_LongerThanTheLimit_IsTooLong_FromItsFixedPartAlone()
    {
        byte[] header = ProxyProtocolHeader.CreateV2(ClientV4, ServerV4, [new(ProxyProtocolHeader.TlvNoop, new byte[5000])]).ToArray();
        ProxyProtocolReadResult result = ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(header, 0, 16), maxHeaderBytes: 4096);
        Assert.Equal(ProxyProtocolStatus.TooLong, result.Status);
        Assert.Equal(ProxyProtocolStatus.Complete, ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(header), maxHeaderBytes: 8192).Status);
    }

    [Theory]
    [InlineData(12, 0x10, "version")]
    [InlineData(12, 0x22, "command")]
    [InlineData(13, 0x41, "family")]
    [InlineData(13, 0x13, "transport")]
    [InlineData(13, 0x10, "UNSPEC transport")]
    public void Version2_BadFixedFields_AreMalformed(int offset, byte value, string what)
    {
        byte[] header = ProxyProtocolHeader.CreateV2(ClientV4, ServerV4).ToArray();
        header[offset] = value;
        Assert.True(ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(header)).Status == ProxyProtocolStatus.Malformed, what);
    }

    [Fact]
    public void Version2_BlockShorterThanItsAddresses_IsMalformed()
    {
        byte[] header = ProxyProtocolHeader.CreateV2(ClientV6, ServerV6).ToArray();
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(14), 12);
        Assert.Equal(ProxyProtocolStatus.Malformed, ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(header, 0, 28)).Status);
    }

    [Theory]
    [InlineData(new byte[] { 0x02, 0x00 })]
    [InlineData(new byte[] { 0x02, 0x00, 0x09, 0x41 })]
    [InlineData(new byte[] { 0x03, 0x00, 0x02, 0x00, 0x00 })]
    [InlineData(new byte[] { 0x20, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00 })]
    [InlineData(new byte[] { 0x20, 0x00, 0x07, 0x01, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00 })]
    public void Version2_BadTlvs_AreMalformed(byte[] tlvs)
    {
        byte[] header = [.. ProxyProtocolHeader.CreateV2(ClientV4, ServerV4).ToArray(), .. tlvs];
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(14), (ushort)(header.Length - 16));
        Assert.Equal(ProxyProtocolStatus.Malformed, ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(header)).Status);
    }

    [Fact]
    public void UniqueIdLongerThan128Bytes_IsMalformed()
    {
        byte[] header = ProxyProtocolHeader.CreateV2(ClientV4, ServerV4, [new(ProxyProtocolHeader.TlvUniqueId, new byte[129])]).ToArray();
        Assert.Equal(ProxyProtocolStatus.Malformed, ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(header)).Status);
    }

    [Fact]
    public void Checksum_Verified_WhenPresent()
    {
        byte[] good = ProxyProtocolHeader.CreateV2(ClientV4, ServerV4, [new(ProxyProtocolHeader.TlvAuthority, "example.com"u8.ToArray())], addChecksum: true).ToArray();
        Assert.Equal(ProxyProtocolStatus.Complete, ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(good)).Status);

        byte[] bad = (byte[])good.Clone();
        bad[^1] ^= 0x01;
        Assert.Equal(ProxyProtocolStatus.ChecksumMismatch, ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(bad)).Status);

        byte[] tampered = (byte[])good.Clone();
        tampered[20] ^= 0x01;
        Assert.Equal(ProxyProtocolStatus.ChecksumMismatch, ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(tampered)).Status);
    }

    [Fact]
    public void Crc32c_MatchesTheStandardCheckValue() =>
        Assert.Equal(0xE3069283u, Transport.Internal.Crc32c.Compute("123456789"u8));

    [Fact]
    public void Tlvs_AreExposed_SslSubTlvsIncluded()
    {
        ProxyProtocolHeader header = Read(ProxyProtocolHeader.CreateV2(ClientV4, ServerV4, TestTlvs(), addChecksum: true).ToArray());

        Assert.Equal("h2", header.ApplicationProtocol);
        Assert.Equal("api.example.com", header.Authority);
        Assert.Equal("id-42"u8.ToArray(), header.UniqueId.ToArray());
        Assert.Equal("blue", header.NetNamespace);
        ProxyProtocolSsl ssl = header.Ssl!;
        Assert.True(ssl.IsTls);
        Assert.True(ssl.HasClientCertificate);
        Assert.Equal(0u, ssl.Verify);
        Assert.Equal("TLSv1.3", ssl.Version);
        Assert.Equal("client-1", ssl.CommonName);
        Assert.Equal("TLS_AES_128_GCM_SHA256", ssl.Cipher);
        Assert.Equal("SHA256", ssl.SignatureAlgorithm);
        Assert.Equal("RSA2048", ssl.KeyAlgorithm);
        Assert.True(header.TryGetTlv(ProxyProtocolHeader.TlvCrc32c, out ReadOnlyMemory<byte> crc));
        Assert.Equal(4, crc.Length);
    }

    [Fact]
    public void Local_KeepsNoAddresses_EvenWithAnAddressBlock()
    {
        byte[] header = ProxyProtocolHeader.CreateV2(ClientV4, ServerV4).ToArray();
        header[12] = 0x20;
        ProxyProtocolHeader read = Read(header);
        Assert.Equal(ProxyProtocolCommand.Local, read.Command);
        Assert.True(read.IsLocal);
        Assert.Null(read.SourceEndPoint);
    }

    [Fact]
    public void ReadingWhatIsNotYetAHeader_AllocatesNothing()
    {
        var incomplete = new ReadOnlySequence<byte>(ProxyProtocolHeader.CreateV2(ClientV6, ServerV6, TestTlvs()).ToArray()[..40]);
        var plain = new ReadOnlySequence<byte>("PING\r\n"u8.ToArray());
        var malformed = new ReadOnlySequence<byte>("PROXY TCP4 1 2 3 4\r\n"u8.ToArray());
        var partialV1 = new ReadOnlySequence<byte>("PROXY TCP6 2001:db8::7 2001:"u8.ToArray());
        ReadOnlySequence<byte>[] inputs = [incomplete, plain, malformed, partialV1];
        foreach (ReadOnlySequence<byte> input in inputs)
        {
            Assert.NotEqual(ProxyProtocolStatus.Complete, ProxyProtocolHeader.TryRead(input).Status);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            ProxyProtocolHeader.TryRead(incomplete);
            ProxyProtocolHeader.TryRead(plain);
            ProxyProtocolHeader.TryRead(malformed);
            ProxyProtocolHeader.TryRead(partialV1);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Writer_RefusesMixedFamilies() =>
        Assert.Throws<ArgumentException>(() => ProxyProtocolHeader.CreateV1(ClientV4, ServerV6));

    internal static ProxyProtocolTlv[] TestTlvs()
    {
        byte[] ssl = [0x07, 0, 0, 0, 0, .. SubTlv(0x21, "TLSv1.3"), .. SubTlv(0x22, "client-1"), .. SubTlv(0x23, "TLS_AES_128_GCM_SHA256"),
            .. SubTlv(0x24, "SHA256"), .. SubTlv(0x25, "RSA2048")];
        return
        [
            new(ProxyProtocolHeader.TlvAlpn, "h2"u8.ToArray()),
            new(ProxyProtocolHeader.TlvAuthority, "api.example.com"u8.ToArray()),
            new(ProxyProtocolHeader.TlvUniqueId, "id-42"u8.ToArray()),
            new(ProxyProtocolHeader.TlvSsl, ssl),
            new(ProxyProtocolHeader.TlvNetNamespace, "blue"u8.ToArray()),
            new(ProxyProtocolHeader.TlvNoop, new byte[3]),
        ];

        static byte[] SubTlv(byte type, string value) => [type, 0, (byte)value.Length, .. Encoding.ASCII.GetBytes(value)];
    }

    private static ProxyProtocolHeader Read(byte[] bytes)
    {
        ProxyProtocolReadResult result = ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(bytes));
        Assert.Equal(ProxyProtocolStatus.Complete, result.Status);
        return result.Header!;
    }

    [Fact]
    public void UnixHeader_AnAbstractName_RoundTrips_AndAnUnnamedSide_MeansNoAddresses()
    {
        var client = new UnixDomainSocketEndPoint("\0client");
        var server = new UnixDomainSocketEndPoint("/run/server.sock");
        byte[] bytes = ProxyProtocolHeader.CreateV2(client, server).ToArray();

        ProxyProtocolReadResult result = ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(bytes));

        Assert.Equal(ProxyProtocolStatus.Complete, result.Status);
        Assert.Equal(client, result.Header!.SourceEndPoint);
        Assert.Equal(server, result.Header.DestinationEndPoint);
        Assert.Equal(bytes, result.Header.ToArray()); // the leading NUL is written back, not "@client"

        // An unnamed client socket (an empty source path): no client address, so the connection's own stand.
        bytes.AsSpan(16, 108).Clear();
        ProxyProtocolReadResult unnamed = ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(bytes));
        Assert.Equal(ProxyProtocolStatus.Complete, unnamed.Status);
        Assert.True(unnamed.Header!.IsLocal);
        Assert.Null(unnamed.Header.DestinationEndPoint);
        ProxyProtocolReadResult again = ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(unnamed.Header.ToArray()));
        Assert.Equal(ProxyProtocolStatus.Complete, again.Status);
        Assert.True(again.Header!.IsLocal);
    }

    private static ProxyProtocolHeader Create(string name) => name switch
    {
        "v1-tcp4" => ProxyProtocolHeader.CreateV1(ClientV4, ServerV4),
        "v1-tcp6" => ProxyProtocolHeader.CreateV1(ClientV6, ServerV6),
        "v1-unknown" => ProxyProtocolHeader.CreateV1Unknown(),
        "v2-ipv4" => ProxyProtocolHeader.CreateV2(ClientV4, ServerV4),
        "v2-ipv6" => ProxyProtocolHeader.CreateV2(ClientV6, ServerV6),
        "v2-unix" => ProxyProtocolHeader.CreateV2(new UnixDomainSocketEndPoint("/run/client.sock"), new UnixDomainSocketEndPoint("/run/haproxy.sock")),
        "v2-local" => ProxyProtocolHeader.CreateV2Local(),
        "v2-tlvs" => ProxyProtocolHeader.CreateV2(ClientV6, ServerV6, TestTlvs(), addChecksum: true),
        "v2-udp" => ProxyProtocolHeader.CreateV2(ClientV4, ServerV4, isDatagram: true),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };
}
