using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Transport.Internal;

namespace Transport;

/// <summary>
/// A PROXY protocol header (HAProxy's PROXY protocol, versions 1 and 2): the client's real addresses as a proxy in
/// front of the server saw them, and, in version 2, type-length-value fields (TLVs) such as the ALPN protocol, the
/// server name, a unique id and the TLS session the proxy terminated. Read one with <see cref="TryRead"/>; create one
/// to send with <see cref="CreateV1(IPEndPoint, IPEndPoint)"/>, <see cref="CreateV2"/> and <see cref="CreateV2Local"/>.
/// </summary>
public sealed class ProxyProtocolHeader
{
    /// <summary>The longest version 1 header the specification allows, CRLF included: 107 bytes.</summary>
    public const int MaxV1Length = 107;

    /// <summary>The longest version 2 header there can be: the 16-byte fixed part and a 65,535-byte block.</summary>
    public const int MaxV2Length = 16 + ushort.MaxValue;

    /// <summary>The TLV type of the application protocol (ALPN) the client negotiated with the proxy.</summary>
    public const byte TlvAlpn = 0x01;

    /// <summary>The TLV type of the host name the client asked the proxy for (SNI, or the HTTP authority).</summary>
    public const byte TlvAuthority = 0x02;

    /// <summary>The TLV type of the CRC32c checksum of the whole header; verified by <see cref="TryRead"/> when present.</summary>
    public const byte TlvCrc32c = 0x03;

    /// <summary>The TLV type that carries nothing (padding).</summary>
    public const byte TlvNoop = 0x04;

    /// <summary>The TLV type of an opaque id the proxy gave the connection, up to 128 bytes.</summary>
    public const byte TlvUniqueId = 0x05;

    /// <summary>The TLV type of the TLS session the proxy terminated; read it with <see cref="Ssl"/>.</summary>
    public const byte TlvSsl = 0x20;

    /// <summary>The TLV type of the network namespace the proxy accepted the connection in (US-ASCII).</summary>
    public const byte TlvNetNamespace = 0x30;

    private readonly ProxyProtocolTlv[] _tlvs;
    private readonly bool _addChecksum;

    internal ProxyProtocolHeader(int version, ProxyProtocolCommand command, EndPoint? source, EndPoint? destination, bool isDatagram,
        ProxyProtocolTlv[] tlvs, bool addChecksum = false)
    {
        Version = version;
        Command = command;
        SourceEndPoint = source;
        DestinationEndPoint = destination;
        IsDatagram = isDatagram;
        _tlvs = tlvs;
        _addChecksum = addChecksum;
    }

    /// <summary>1 (the text form) or 2 (the binary form).</summary>
    public int Version { get; }

    /// <summary>
    /// <see cref="ProxyProtocolCommand.Local"/> for a version 2 <c>LOCAL</c> header (the proxy's own connection, such as a
    /// health check); <see cref="ProxyProtocolCommand.Proxy"/> otherwise, version 1 included.
    /// </summary>
    public ProxyProtocolCommand Command { get; }

    /// <summary>
    /// Whether the header carries no client address, so the connection's own addresses stand: a version 2 <c>LOCAL</c>
    /// header, a version 1 <c>PROXY UNKNOWN</c>, or a version 2 header of the <c>UNSPEC</c> family.
    /// </summary>
    public bool IsLocal => SourceEndPoint is null;

    /// <summary>
    /// The client's address: an <see cref="IPEndPoint"/> or a <see cref="UnixDomainSocketEndPoint"/>
    /// (<see langword="null"/> when the socket was unnamed); <see langword="null"/> when <see cref="IsLocal"/>.
    /// </summary>
    public EndPoint? SourceEndPoint { get; }

    /// <summary>The address the client connected to, at the proxy; <see langword="null"/> when <see cref="IsLocal"/>.</summary>
    public EndPoint? DestinationEndPoint { get; }

    /// <summary>Whether the proxied connection was a datagram one (version 2 <c>DGRAM</c>).</summary>
    public bool IsDatagram { get; }

    /// <summary>The version 2 TLVs in the order they came (the checksum included); empty for version 1.</summary>
    public IReadOnlyList<ProxyProtocolTlv> Tlvs => _tlvs;

    /// <summary>The ALPN protocol the client negotiated with the proxy (TLV 0x01), or <see langword="null"/>.</summary>
    public string? ApplicationProtocol => TextTlv(TlvAlpn, Encoding.ASCII);

    /// <summary>The host name the client asked the proxy for (TLV 0x02, UTF-8), or <see langword="null"/>.</summary>
    public string? Authority => TextTlv(TlvAuthority, Encoding.UTF8);

    /// <summary>The proxy's id of the connection (TLV 0x05), empty when absent.</summary>
    public ReadOnlyMemory<byte> UniqueId => TryGetTlv(TlvUniqueId, out ReadOnlyMemory<byte> value) ? value : default;

    /// <summary>The network namespace the proxy accepted the connection in (TLV 0x30), or <see langword="null"/>.</summary>
    public string? NetNamespace => TextTlv(TlvNetNamespace, Encoding.ASCII);

    /// <summary>The TLS session between the client and the proxy (TLV 0x20), or <see langword="null"/> when the header has none.</summary>
    public ProxyProtocolSsl? Ssl => TryGetTlv(TlvSsl, out ReadOnlyMemory<byte> value) ? ProxyProtocolSsl.Parse(value) : null;

    /// <summary>The bytes this header takes when written with <see cref="WriteTo"/>.</summary>
    public int Length => Version == 1 ? V1Text().Length : 16 + ProxyProtocolParser.AddressLength(SourceEndPoint) + TlvLength();

    /// <summary>Finds the first TLV of <paramref name="type"/>.</summary>
    /// <param name="type">The TLV type, e.g. <see cref="TlvAuthority"/>.</param>
    /// <param name="value">Its value.</param>
    /// <returns>Whether the header has one.</returns>
    public bool TryGetTlv(byte type, out ReadOnlyMemory<byte> value)
    {
        foreach (ProxyProtocolTlv tlv in _tlvs)
        {
            if (tlv.Type == type)
            {
                value = tlv.Value;
                return true;
            }
        }

        value = default;
        return false;
    }

    /// <summary>
    /// Reads a header at the start of <paramref name="buffer"/>. Decides from the first bytes: a buffer that cannot be
    /// the start of <c>"PROXY "</c> or of the version 2 signature is <see cref="ProxyProtocolStatus.NotProxyProtocol"/>
    /// at once, however short (a plaintext <c>"PING\r\n"</c> does not wait for 12 bytes). Every length is bounded: version 1
    /// by <see cref="MaxV1Length"/>, version 2 by <paramref name="maxHeaderBytes"/>, judged from the fixed part before the
    /// rest arrives. Nothing is allocated until a complete header is returned.
    /// </summary>
    /// <param name="buffer">The bytes received so far.</param>
    /// <param name="maxHeaderBytes">The longest version 2 header accepted, the fixed 16 bytes included.</param>
    /// <returns>The outcome; on <see cref="ProxyProtocolStatus.Complete"/> the header and how many bytes it took.</returns>
    public static ProxyProtocolReadResult TryRead(in ReadOnlySequence<byte> buffer, int maxHeaderBytes = MaxV2Length) =>
        ProxyProtocolParser.Read(buffer, maxHeaderBytes);

    /// <summary>A version 1 header for a TCP connection from <paramref name="source"/> to <paramref name="destination"/>.</summary>
    /// <param name="source">The client's address.</param>
    /// <param name="destination">The address the client connected to.</param>
    /// <returns>The header.</returns>
    /// <exception cref="ArgumentException">The two are not of the same IP family.</exception>
    public static ProxyProtocolHeader CreateV1(IPEndPoint source, IPEndPoint destination)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        SameFamily(source, destination);
        return new ProxyProtocolHeader(1, ProxyProtocolCommand.Proxy, source, destination, isDatagram: false, []);
    }

    /// <summary>A version 1 <c>PROXY UNKNOWN</c> header: the receiver keeps the connection's own addresses.</summary>
    /// <returns>The header.</returns>
    public static ProxyProtocolHeader CreateV1Unknown() =>
        new(1, ProxyProtocolCommand.Proxy, null, null, isDatagram: false, []);

    /// <summary>A version 2 <c>PROXY</c> header for a connection from <paramref name="source"/> to <paramref name="destination"/>.</summary>
    /// <param name="source">The client's address: an <see cref="IPEndPoint"/> or a <see cref="UnixDomainSocketEndPoint"/>.</param>
    /// <param name="destination">The address the client connected to, of the same family.</param>
    /// <param name="tlvs">TLVs to send, written as given (a <see cref="TlvCrc32c"/> among them is sent as is, right or wrong).</param>
    /// <param name="addChecksum">Whether to append a CRC32c TLV computed over the header.</param>
    /// <param name="isDatagram">Whether the connection is a datagram one (UDP, or a datagram Unix socket).</param>
    /// <returns>The header.</returns>
    /// <exception cref="ArgumentException">The addresses are of different families, or the TLVs do not fit.</exception>
    public static ProxyProtocolHeader CreateV2(EndPoint source, EndPoint destination, IEnumerable<ProxyProtocolTlv>? tlvs = null,
        bool addChecksum = false, bool isDatagram = false)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        if (source is IPEndPoint ip)
        {
            SameFamily(ip, destination as IPEndPoint ?? throw new ArgumentException("The destination must be an IPEndPoint, as the source is.", nameof(destination)));
        }
        else if (source is not UnixDomainSocketEndPoint || destination is not UnixDomainSocketEndPoint)
        {
            throw new ArgumentException("The addresses must both be IPEndPoint or both UnixDomainSocketEndPoint.", nameof(source));
        }

        return Checked(new ProxyProtocolHeader(2, ProxyProtocolCommand.Proxy, source, destination, isDatagram, [.. tlvs ?? []], addChecksum));
    }

    /// <summary>A version 2 <c>LOCAL</c> header, as a proxy sends on its own health checks: the receiver keeps the connection's addresses.</summary>
    /// <param name="tlvs">TLVs to send.</param>
    /// <param name="addChecksum">Whether to append a CRC32c TLV computed over the header.</param>
    /// <returns>The header.</returns>
    public static ProxyProtocolHeader CreateV2Local(IEnumerable<ProxyProtocolTlv>? tlvs = null, bool addChecksum = false) =>
        Checked(new ProxyProtocolHeader(2, ProxyProtocolCommand.Local, null, null, isDatagram: false, [.. tlvs ?? []], addChecksum));

    /// <summary>Writes the header as the protocol sends it.</summary>
    /// <param name="destination">At least <see cref="Length"/> bytes.</param>
    /// <returns>The bytes written: <see cref="Length"/>.</returns>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is too short.</exception>
    public int WriteTo(Span<byte> destination)
    {
        int length = Length;
        if (destination.Length < length)
        {
            throw new ArgumentException($"The header takes {length.ToString(CultureInfo.InvariantCulture)} bytes.", nameof(destination));
        }

        if (Version == 1)
        {
            return Encoding.ASCII.GetBytes(V1Text(), destination);
        }

        ProxyProtocolParser.V2Signature.CopyTo(destination);
        destination[12] = (byte)(0x20 | (int)Command);
        destination[13] = (byte)((ProxyProtocolParser.Family(SourceEndPoint) << 4) | (SourceEndPoint is null ? 0 : IsDatagram ? 2 : 1));
        BinaryPrimitives.WriteUInt16BigEndian(destination[14..], (ushort)(length - 16));
        int position = 16 + ProxyProtocolParser.WriteAddresses(SourceEndPoint, DestinationEndPoint, destination[16..]);
        foreach (ProxyProtocolTlv tlv in _tlvs)
        {
            position += WriteTlv(destination[position..], tlv.Type, tlv.Value.Span);
        }

        if (_addChecksum)
        {
            position += WriteTlv(destination[position..], TlvCrc32c, [0, 0, 0, 0]);
            BinaryPrimitives.WriteUInt32BigEndian(destination[(position - 4)..], Crc32c.Compute(destination[..position]));
        }

        return position;
    }

    /// <summary>The header as the protocol sends it.</summary>
    /// <returns>A new array of <see cref="Length"/> bytes.</returns>
    public byte[] ToArray()
    {
        byte[] bytes = new byte[Length];
        WriteTo(bytes);
        return bytes;
    }

    /// <inheritdoc />
    public override string ToString() => Version == 1
        ? V1Text().TrimEnd()
        : $"PROXY v2 {Command}{(IsLocal ? "" : $" {SourceEndPoint} → {DestinationEndPoint}")}{(_tlvs.Length == 0 ? "" : $", {_tlvs.Length.ToString(CultureInfo.InvariantCulture)} TLV(s)")}";

    private string V1Text()
    {
        if (SourceEndPoint is not IPEndPoint source || DestinationEndPoint is not IPEndPoint destination)
        {
            return "PROXY UNKNOWN\r\n";
        }

        string family = source.AddressFamily == AddressFamily.InterNetwork ? "TCP4" : "TCP6";
        return string.Create(CultureInfo.InvariantCulture, $"PROXY {family} {source.Address} {destination.Address} {source.Port} {destination.Port}\r\n");
    }

    private int TlvLength()
    {
        int length = _addChecksum ? 7 : 0;
        foreach (ProxyProtocolTlv tlv in _tlvs)
        {
            length += 3 + tlv.Value.Length;
        }

        return length;
    }

    private static int WriteTlv(Span<byte> destination, byte type, ReadOnlySpan<byte> value)
    {
        destination[0] = type;
        BinaryPrimitives.WriteUInt16BigEndian(destination[1..], (ushort)value.Length);
        value.CopyTo(destination[3..]);
        return 3 + value.Length;
    }

    private string? TextTlv(byte type, Encoding encoding) =>
        TryGetTlv(type, out ReadOnlyMemory<byte> value) ? encoding.GetString(value.Span) : null;

    private static void SameFamily(IPEndPoint source, IPEndPoint destination)
    {
        if (source.AddressFamily != destination.AddressFamily || source.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
        {
            throw new ArgumentException($"The source ({source}) and destination ({destination}) must both be IPv4 or both IPv6.", nameof(destination));
        }
    }

    private static ProxyProtocolHeader Checked(ProxyProtocolHeader header)
    {
        foreach (ProxyProtocolTlv tlv in header._tlvs)
        {
            if (tlv.Value.Length > ushort.MaxValue)
            {
                throw new ArgumentException($"TLV 0x{tlv.Type:X2} is longer than 65,535 bytes.", nameof(header));
            }
        }

        if (header.Length > MaxV2Length)
        {
            throw new ArgumentException("The TLVs do not fit a version 2 header (65,535 bytes after the fixed part).", nameof(header));
        }

        return header;
    }
}

/// <summary>A version 2 header's command.</summary>
public enum ProxyProtocolCommand
{
    /// <summary>The proxy's own connection (e.g. a health check): the connection's addresses stand.</summary>
    Local = 0,

    /// <summary>A relayed connection: the header carries the client's addresses.</summary>
    Proxy = 1,
}

/// <summary>One type-length-value field of a version 2 header.</summary>
/// <param name="Type">The type, e.g. <see cref="ProxyProtocolHeader.TlvAuthority"/>.</param>
/// <param name="Value">The value, up to 65,535 bytes.</param>
public readonly record struct ProxyProtocolTlv(byte Type, ReadOnlyMemory<byte> Value);

/// <summary>What <see cref="ProxyProtocolHeader.TryRead"/> found.</summary>
public enum ProxyProtocolStatus
{
    /// <summary>A valid header: see <see cref="ProxyProtocolReadResult.Header"/> and <see cref="ProxyProtocolReadResult.Length"/>.</summary>
    Complete,

    /// <summary>The bytes so far are the start of a header (or could be): more are needed to decide.</summary>
    Incomplete,

    /// <summary>The bytes cannot start a header: the connection did not send one.</summary>
    NotProxyProtocol,

    /// <summary>A header that breaks the specification.</summary>
    Malformed,

    /// <summary>A version 1 header without CRLF in its first 107 bytes, or a version 2 header longer than allowed.</summary>
    TooLong,

    /// <summary>A version 2 header whose CRC32c TLV does not match its bytes.</summary>
    ChecksumMismatch,
}

/// <summary>The outcome of <see cref="ProxyProtocolHeader.TryRead"/>.</summary>
/// <param name="Status">What was found.</param>
/// <param name="Header">The header, on <see cref="ProxyProtocolStatus.Complete"/>.</param>
/// <param name="Length">The bytes the header took, on <see cref="ProxyProtocolStatus.Complete"/>.</param>
/// <param name="Error">Why the header was refused, for a log line; <see langword="null"/> unless it was.</param>
public readonly record struct ProxyProtocolReadResult(ProxyProtocolStatus Status, ProxyProtocolHeader? Header, int Length, string? Error);

/// <summary>The TLS session between the client and the proxy, from a version 2 header's SSL TLV (0x20).</summary>
public sealed class ProxyProtocolSsl
{
    private ProxyProtocolSsl(byte client, uint verify, string? version, string? commonName, string? cipher, string? signatureAlgorithm, string? keyAlgorithm)
    {
        ClientFlags = client;
        Verify = verify;
        Version = version;
        CommonName = commonName;
        Cipher = cipher;
        SignatureAlgorithm = signatureAlgorithm;
        KeyAlgorithm = keyAlgorithm;
    }

    /// <summary>The <c>client</c> bit field: 0x01 the client used TLS, 0x02 it sent a certificate on this connection, 0x04 on the session.</summary>
    public byte ClientFlags { get; }

    /// <summary>Whether the client connected to the proxy over TLS.</summary>
    public bool IsTls => (ClientFlags & 0x01) != 0;

    /// <summary>Whether the client presented a certificate (on this connection or its session).</summary>
    public bool HasClientCertificate => (ClientFlags & 0x06) != 0;

    /// <summary>0 when the client's certificate was verified (or none was sent); otherwise the proxy's non-zero result.</summary>
    public uint Verify { get; }

    /// <summary>The TLS version, e.g. <c>TLSv1.3</c> (sub-TLV 0x21).</summary>
    public string? Version { get; }

    /// <summary>The common name of the client certificate's subject (sub-TLV 0x22).</summary>
    public string? CommonName { get; }

    /// <summary>The cipher suite, e.g. <c>ECDHE-RSA-AES128-GCM-SHA256</c> (sub-TLV 0x23).</summary>
    public string? Cipher { get; }

    /// <summary>The algorithm that signed the client certificate (sub-TLV 0x24).</summary>
    public string? SignatureAlgorithm { get; }

    /// <summary>The algorithm of the client certificate's key (sub-TLV 0x25).</summary>
    public string? KeyAlgorithm { get; }

    /// <summary>Reads a value the parser has already checked: the client byte, the verify word, then sub-TLVs.</summary>
    internal static ProxyProtocolSsl Parse(ReadOnlyMemory<byte> value)
    {
        ReadOnlySpan<byte> span = value.Span;
        string? version = null, commonName = null, cipher = null, signature = null, key = null;
        int position = 5;
        while (position + 3 <= span.Length)
        {
            byte type = span[position];
            int length = BinaryPrimitives.ReadUInt16BigEndian(span[(position + 1)..]);
            ReadOnlySpan<byte> field = span.Slice(position + 3, Math.Min(length, span.Length - position - 3));
            switch (type)
            {
                case 0x21: version = Encoding.ASCII.GetString(field); break;
                case 0x22: commonName = Encoding.UTF8.GetString(field); break;
                case 0x23: cipher = Encoding.ASCII.GetString(field); break;
                case 0x24: signature = Encoding.ASCII.GetString(field); break;
                case 0x25: key = Encoding.ASCII.GetString(field); break;
                default: break;
            }

            position += 3 + length;
        }

        return new ProxyProtocolSsl(span[0], BinaryPrimitives.ReadUInt32BigEndian(span[1..]), version, commonName, cipher, signature, key);
    }
}
