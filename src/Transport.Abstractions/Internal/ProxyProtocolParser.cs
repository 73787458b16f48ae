using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Transport.Internal;

/// <summary>
/// The PROXY protocol reader behind <see cref="ProxyProtocolHeader.TryRead"/>. Strict: one space between version 1
/// fields, dotted-quad IPv4 and colon-form IPv6 that match the stated family, ports 0 to 65535 in decimal, only the
/// version 2 family/transport pairs the specification lists, TLVs that fit their block, a unique id of at most 128
/// bytes, a well-formed SSL TLV, and a CRC32c that matches. The first bytes decide: what cannot begin a header is not
/// waited on. Until a header is complete nothing is allocated (the buffer is read through stack copies or, for a long
/// version 2 header in several segments, a pooled array).
/// </summary>
internal static class ProxyProtocolParser
{
    public static ReadOnlySpan<byte> V2Signature => [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    private static ReadOnlySpan<byte> V1Prefix => "PROXY "u8;

    private static readonly SearchValues<byte> Ipv6Characters = SearchValues.Create("0123456789abcdefABCDEF:."u8);

    private const int V2FixedLength = 16;
    private const int UnixPathLength = 108;
    private const int MaxUniqueIdLength = 128;

    public static ProxyProtocolReadResult Read(in ReadOnlySequence<byte> buffer, int maxHeaderBytes)
    {
        Span<byte> start = stackalloc byte[ProxyProtocolHeader.MaxV1Length];
        int available = (int)Math.Min(buffer.Length, start.Length);
        start = start[..available];
        buffer.Slice(0, available).CopyTo(start);
        if (available == 0)
        {
            return Incomplete;
        }

        ReadOnlySpan<byte> prefix = start[0] == (byte)'P' ? V1Prefix : V2Signature;
        int compared = Math.Min(available, prefix.Length);
        if (!start[..compared].SequenceEqual(prefix[..compared]))
        {
            return new(ProxyProtocolStatus.NotProxyProtocol, null, 0, null);
        }

        if (compared < prefix.Length)
        {
            return Incomplete;
        }

        return prefix[0] == (byte)'P' ? ReadV1(start) : ReadV2(buffer, start, maxHeaderBytes);
    }

    private static ProxyProtocolReadResult Incomplete => new(ProxyProtocolStatus.Incomplete, null, 0, null);

    private static ProxyProtocolReadResult Fail(string error) => new(ProxyProtocolStatus.Malformed, null, 0, error);

    private static ProxyProtocolReadResult ReadV1(ReadOnlySpan<byte> start)
    {
        int lineFeed = start.IndexOf((byte)'\n');
        if (lineFeed < 0)
        {
            return start.Length >= ProxyProtocolHeader.MaxV1Length
                ? new(ProxyProtocolStatus.TooLong, null, 0, "version 1 header without CRLF in its first 107 bytes")
                : Incomplete;
        }

        if (start[lineFeed - 1] != (byte)'\r')
        {
            return Fail("version 1 header ends in LF without CR");
        }

        ReadOnlySpan<byte> line = start[V1Prefix.Length..(lineFeed - 1)];
        int length = lineFeed + 1;
        if (line.StartsWith("UNKNOWN"u8) && (line.Length == 7 || line[7] == (byte)' '))
        {
            // The specification: whatever follows UNKNOWN on the line is ignored, and the connection's own addresses used.
            return new(ProxyProtocolStatus.Complete, new ProxyProtocolHeader(1, ProxyProtocolCommand.Proxy, null, null, false, []), length, null);
        }

        if (line.IndexOfAnyExceptInRange((byte)' ', (byte)'~') >= 0)
        {
            return Fail("version 1 header with a control or non-ASCII byte");
        }

        bool v4;
        if (line.StartsWith("TCP4 "u8))
        {
            v4 = true;
        }
        else if (line.StartsWith("TCP6 "u8))
        {
            v4 = false;
        }
        else
        {
            return Fail("version 1 header with a protocol other than TCP4, TCP6 or UNKNOWN");
        }

        ReadOnlySpan<byte> rest = line[5..];
        if (!NextField(ref rest, out ReadOnlySpan<byte> sourceText) || !NextField(ref rest, out ReadOnlySpan<byte> destinationText)
            || !NextField(ref rest, out ReadOnlySpan<byte> sourcePortText) || !NextField(ref rest, out ReadOnlySpan<byte> destinationPortText)
            || rest.Length != 0)
        {
            return Fail("version 1 header without exactly four fields after the protocol, one space apart");
        }

        if (!TryParseAddress(sourceText, v4, out IPAddress? source) || !TryParseAddress(destinationText, v4, out IPAddress? destination))
        {
            return Fail(v4 ? "version 1 TCP4 header with an address that is not a dotted-quad IPv4 address" : "version 1 TCP6 header with an address that is not an IPv6 address");
        }

        if (!TryParsePort(sourcePortText, out int sourcePort) || !TryParsePort(destinationPortText, out int destinationPort))
        {
            return Fail("version 1 header with a port that is not a decimal number from 0 to 65535");
        }

        var header = new ProxyProtocolHeader(1, ProxyProtocolCommand.Proxy, new IPEndPoint(source, sourcePort), new IPEndPoint(destination, destinationPort), false, []);
        return new(ProxyProtocolStatus.Complete, header, length, null);
    }

    /// <summary>The text up to the next single space (or the end); false for an empty field.</summary>
    private static bool NextField(ref ReadOnlySpan<byte> rest, out ReadOnlySpan<byte> field)
    {
        int space = rest.IndexOf((byte)' ');
        field = space < 0 ? rest : rest[..space];
        rest = space < 0 ? [] : rest[(space + 1)..];
        return field.Length > 0 && !(space >= 0 && rest.Length == 0);
    }

    private static bool TryParseAddress(ReadOnlySpan<byte> text, bool v4, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IPAddress? address)
    {
        address = null;
        if (v4)
        {
            // IPAddress.TryParse takes "1" or "0x7f.1" as IPv4: the specification wants four decimal octets.
            Span<byte> octets = stackalloc byte[4];
            for (int i = 0; i < 4; i++)
            {
                int dot = text.IndexOf((byte)'.');
                ReadOnlySpan<byte> part = i < 3 ? (dot < 0 ? [] : text[..dot]) : text;
                if (part.Length is 0 or > 3 || part.IndexOfAnyExceptInRange((byte)'0', (byte)'9') >= 0 || (part.Length > 1 && part[0] == (byte)'0'))
                {
                    return false;
                }

                int value = 0;
                foreach (byte digit in part)
                {
                    value = (value * 10) + (digit - '0');
                }

                if (value > 255)
                {
                    return false;
                }

                octets[i] = (byte)value;
                text = i < 3 ? text[(dot + 1)..] : [];
            }

            address = new IPAddress(octets);
            return true;
        }

        if (text.Length > 45 || text.IndexOfAnyExcept(Ipv6Characters) >= 0)
        {
            return false;
        }

        Span<char> chars = stackalloc char[45];
        int count = Encoding.ASCII.GetChars(text, chars);
        return IPAddress.TryParse(chars[..count], out address) && address.AddressFamily == AddressFamily.InterNetworkV6;
    }

    private static bool TryParsePort(ReadOnlySpan<byte> text, out int port)
    {
        port = 0;
        if (text.Length is 0 or > 5 || text.IndexOfAnyExceptInRange((byte)'0', (byte)'9') >= 0 || (text.Length > 1 && text[0] == (byte)'0'))
        {
            return false;
        }

        foreach (byte digit in text)
        {
            port = (port * 10) + (digit - '0');
        }

        return port <= ushort.MaxValue;
    }

    private static ProxyProtocolReadResult ReadV2(in ReadOnlySequence<byte> buffer, ReadOnlySpan<byte> start, int maxHeaderBytes)
    {
        if (start.Length < V2FixedLength)
        {
            return Incomplete;
        }

        if (start[12] >> 4 != 2)
        {
            return Fail("version 2 signature with a version other than 2");
        }

        int command = start[12] & 0x0F;
        if (command > 1)
        {
            return Fail("version 2 header with a command other than LOCAL or PROXY");
        }

        int family = start[13] >> 4;
        int transport = start[13] & 0x0F;
        if (family > 3 || transport > 2)
        {
            return Fail("version 2 header with an unknown address family or transport protocol");
        }

        int length = V2FixedLength + BinaryPrimitives.ReadUInt16BigEndian(start[14..]);
        if (length > maxHeaderBytes)
        {
            return new(ProxyProtocolStatus.TooLong, null, 0, "version 2 header longer than MaxHeaderBytes");
        }

        if (buffer.Length < length)
        {
            return Incomplete;
        }

        byte[]? rented = null;
        try
        {
            ReadOnlySpan<byte> header;
            if (buffer.FirstSpan.Length >= length)
            {
                header = buffer.FirstSpan[..length];
            }
            else if (length <= start.Length)
            {
                header = start[..length];
            }
            else
            {
                rented = ArrayPool<byte>.Shared.Rent(length);
                buffer.Slice(0, length).CopyTo(rented);
                header = rented.AsSpan(0, length);
            }

            return ReadV2(header, command == 0 ? ProxyProtocolCommand.Local : ProxyProtocolCommand.Proxy, family, transport);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    private static ProxyProtocolReadResult ReadV2(ReadOnlySpan<byte> header, ProxyProtocolCommand command, int family, int transport)
    {
        int addressLength = family switch { 1 => 12, 2 => 36, 3 => 2 * UnixPathLength, _ => 0 };
        int block = header.Length - V2FixedLength;
        EndPoint? source = null, destination = null;
        int tlvStart;
        if (command == ProxyProtocolCommand.Local)
        {
            // The receiver must use the connection's own addresses and discard the address block, whatever the family.
            tlvStart = V2FixedLength + (block >= addressLength ? addressLength : block);
        }
        else
        {
            if ((family == 0) != (transport == 0))
            {
                return Fail("version 2 PROXY header with UNSPEC for only one of family and transport");
            }

            if (block < addressLength)
            {
                return Fail("version 2 header whose block is shorter than its address family's addresses");
            }

            ReadOnlySpan<byte> addresses = header.Slice(V2FixedLength, addressLength);
            switch (family)
            {
                case 1:
                    source = new IPEndPoint(new IPAddress(addresses[..4]), BinaryPrimitives.ReadUInt16BigEndian(addresses[8..]));
                    destination = new IPEndPoint(new IPAddress(addresses[4..8]), BinaryPrimitives.ReadUInt16BigEndian(addresses[10..]));
                    break;
                case 2:
                    source = new IPEndPoint(new IPAddress(addresses[..16]), BinaryPrimitives.ReadUInt16BigEndian(addresses[32..]));
                    destination = new IPEndPoint(new IPAddress(addresses[16..32]), BinaryPrimitives.ReadUInt16BigEndian(addresses[34..]));
                    break;
                case 3:
                    if (!TryReadUnixPath(addresses[..UnixPathLength], out source) || !TryReadUnixPath(addresses[UnixPathLength..], out destination))
                    {
                        return Fail("version 2 UNIX header with a path that is not NUL-terminated");
                    }

                    if (source is null || destination is null)
                    {
                        // An unnamed socket on either side: there is no client address to give, so the connection's own
                        // addresses stand (as for UNKNOWN), and the header says no address at all (so it writes back the same).
                        source = null;
                        destination = null;
                    }

                    break;
                default:
                    break;
            }

            tlvStart = V2FixedLength + addressLength;
        }

        int checksumAt = -1;
        int count = 0;
        for (int position = tlvStart; position < header.Length; count++)
        {
            if (header.Length - position < 3)
            {
                return Fail("version 2 header with a truncated TLV");
            }

            byte type = header[position];
            int valueLength = BinaryPrimitives.ReadUInt16BigEndian(header[(position + 1)..]);
            if (valueLength > header.Length - position - 3)
            {
                return Fail("version 2 header with a TLV longer than the header");
            }

            ReadOnlySpan<byte> value = header.Slice(position + 3, valueLength);
            switch (type)
            {
                case ProxyProtocolHeader.TlvCrc32c:
                    if (valueLength != 4 || checksumAt >= 0)
                    {
                        return Fail("version 2 header with a CRC32c TLV that is not one 4-byte value");
                    }

                    checksumAt = position + 3;
                    break;
                case ProxyProtocolHeader.TlvUniqueId when valueLength > MaxUniqueIdLength:
                    return Fail("version 2 header with a unique id longer than 128 bytes");
                case ProxyProtocolHeader.TlvSsl when !IsWellFormedSsl(value):
                    return Fail("version 2 header with a malformed SSL TLV");
                default:
                    break;
            }

            position += 3 + valueLength;
        }

        if (checksumAt >= 0 && !ChecksumMatches(header, checksumAt))
        {
            return new(ProxyProtocolStatus.ChecksumMismatch, null, 0, "version 2 header whose CRC32c does not match");
        }

        ProxyProtocolTlv[] tlvs = count == 0 ? [] : CopyTlvs(header[tlvStart..], count);
        var result = new ProxyProtocolHeader(2, command, source, destination, command == ProxyProtocolCommand.Proxy && transport == 2, tlvs);
        return new(ProxyProtocolStatus.Complete, result, header.Length, null);
    }

    private static bool TryReadUnixPath(ReadOnlySpan<byte> field, out EndPoint? endpoint)
    {
        endpoint = null;
        int end = field.IndexOf((byte)0);
        if (end < 0)
        {
            return false;
        }

        // An unnamed socket (an empty path) has no address to give; an abstract one (a leading NUL) is kept as Linux names it.
        if (end == 0)
        {
            int abstractEnd = field[1..].IndexOf((byte)0);
            if (abstractEnd <= 0)
            {
                return true;
            }

            endpoint = new UnixDomainSocketEndPoint("\0" + Encoding.UTF8.GetString(field.Slice(1, abstractEnd)));
            return true;
        }

        endpoint = new UnixDomainSocketEndPoint(Encoding.UTF8.GetString(field[..end]));
        return true;
    }

    /// <summary>The client byte, the 4-byte verify result, then sub-TLVs that exactly fill the value.</summary>
    private static bool IsWellFormedSsl(ReadOnlySpan<byte> value)
    {
        if (value.Length < 5)
        {
            return false;
        }

        int position = 5;
        while (position < value.Length)
        {
            if (value.Length - position < 3)
            {
                return false;
            }

            position += 3 + BinaryPrimitives.ReadUInt16BigEndian(value[(position + 1)..]);
        }

        return position == value.Length;
    }

    private static bool ChecksumMatches(ReadOnlySpan<byte> header, int checksumAt)
    {
        uint expected = BinaryPrimitives.ReadUInt32BigEndian(header[checksumAt..]);
        uint crc = Crc32c.Append(Crc32c.Seed, header[..checksumAt]);
        crc = Crc32c.Append(crc, [0, 0, 0, 0]);
        crc = Crc32c.Append(crc, header[(checksumAt + 4)..]);
        return Crc32c.Finish(crc) == expected;
    }

    /// <summary>One array for all the values, so a header costs one copy of its TLV block whatever it holds.</summary>
    private static ProxyProtocolTlv[] CopyTlvs(ReadOnlySpan<byte> block, int count)
    {
        byte[] bytes = block.ToArray();
        var tlvs = new ProxyProtocolTlv[count];
        int position = 0;
        for (int i = 0; i < count; i++)
        {
            int valueLength = BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(position + 1));
            tlvs[i] = new ProxyProtocolTlv(bytes[position], bytes.AsMemory(position + 3, valueLength));
            position += 3 + valueLength;
        }

        return tlvs;
    }

    /// <summary>
    /// The version 2 header at the start of one datagram, without allocating (it runs for every datagram of a proxied
    /// UDP endpoint): checks the fixed part, that a PROXY command carries a UDP source and destination over IPv4 or IPv6,
    /// the TLVs' framing and the CRC32c when there is one, and writes the source address over <paramref name="source"/>'s
    /// port and address bytes (a socket address of the same family, from the platform, so its layout is right).
    /// </summary>
    /// <param name="datagram">The whole datagram.</param>
    /// <param name="sourceV4">A socket address of the IPv4 family, overwritten with an IPv4 source.</param>
    /// <param name="sourceV6">A socket address of the IPv6 family, overwritten with an IPv6 source.</param>
    /// <param name="length">The header's length: the payload starts there.</param>
    /// <param name="source">Which of the two now holds the source; null for LOCAL (the datagram's own sender counts).</param>
    /// <param name="error">Why a header was refused.</param>
    public static ProxyProtocolStatus ReadDatagram(ReadOnlySpan<byte> datagram, SocketAddress sourceV4, SocketAddress sourceV6,
        out int length, out SocketAddress? source, out string? error)
    {
        length = 0;
        source = null;
        error = null;
        if (datagram.Length < V2FixedLength || !datagram[..12].SequenceEqual(V2Signature))
        {
            return ProxyProtocolStatus.NotProxyProtocol;
        }

        int command = datagram[12] & 0x0F;
        if (datagram[12] >> 4 != 2 || command > 1)
        {
            error = "version 2 signature with a version other than 2 or a command other than LOCAL or PROXY";
            return ProxyProtocolStatus.Malformed;
        }

        int headerLength = V2FixedLength + BinaryPrimitives.ReadUInt16BigEndian(datagram[14..]);
        if (headerLength > datagram.Length)
        {
            error = "version 2 header longer than its datagram";
            return ProxyProtocolStatus.Malformed;
        }

        ReadOnlySpan<byte> header = datagram[..headerLength];
        int family = header[13] >> 4;
        int addressLength = family switch { 1 => 12, 2 => 36, 3 => 2 * UnixPathLength, _ => 0 };
        int tlvStart;
        if (command == 0)
        {
            tlvStart = V2FixedLength + Math.Min(addressLength, headerLength - V2FixedLength);
        }
        else
        {
            if ((family != 1 && family != 2) || (header[13] & 0x0F) != 2)
            {
                error = "version 2 PROXY header on a datagram endpoint whose addresses are not UDP over IPv4 or IPv6";
                return ProxyProtocolStatus.Malformed;
            }

            if (headerLength - V2FixedLength < addressLength)
            {
                error = "version 2 header whose block is shorter than its address family's addresses";
                return ProxyProtocolStatus.Malformed;
            }

            ReadOnlySpan<byte> addresses = header.Slice(V2FixedLength, addressLength);
            int size = family == 1 ? 4 : 16;
            source = family == 1 ? sourceV4 : sourceV6;
            Span<byte> bytes = source.Buffer.Span;

            // sockaddr_in and sockaddr_in6 put the port (network order) at 2 and the address at 4 or 8 on every platform.
            addresses.Slice(2 * size, 2).CopyTo(bytes[2..]);
            addresses[..size].CopyTo(bytes[(family == 1 ? 4 : 8)..]);
            tlvStart = V2FixedLength + addressLength;
        }

        int checksumAt = -1;
        for (int position = tlvStart; position < headerLength;)
        {
            if (headerLength - position < 3)
            {
                error = "version 2 header with a truncated TLV";
                return ProxyProtocolStatus.Malformed;
            }

            int valueLength = BinaryPrimitives.ReadUInt16BigEndian(header[(position + 1)..]);
            if (valueLength > headerLength - position - 3)
            {
                error = "version 2 header with a TLV longer than the header";
                return ProxyProtocolStatus.Malformed;
            }

            if (header[position] == ProxyProtocolHeader.TlvCrc32c)
            {
                if (valueLength != 4 || checksumAt >= 0)
                {
                    error = "version 2 header with a CRC32c TLV that is not one 4-byte value";
                    return ProxyProtocolStatus.Malformed;
                }

                checksumAt = position + 3;
            }

            position += 3 + valueLength;
        }

        if (checksumAt >= 0)
        {
            if (!ChecksumMatches(header, checksumAt))
            {
                source = null;
                error = "version 2 header whose CRC32c does not match";
                return ProxyProtocolStatus.ChecksumMismatch;
            }
        }

        length = headerLength;
        return ProxyProtocolStatus.Complete;
    }

    /// <summary>The version 2 address family of <paramref name="endpoint"/>: 0 none, 1 IPv4, 2 IPv6, 3 UNIX.</summary>
    public static int Family(EndPoint? endpoint) => endpoint switch
    {
        IPEndPoint { AddressFamily: AddressFamily.InterNetwork } => 1,
        IPEndPoint => 2,
        UnixDomainSocketEndPoint => 3,
        _ => 0,
    };

    public static int AddressLength(EndPoint? endpoint) => Family(endpoint) switch { 1 => 12, 2 => 36, 3 => 2 * UnixPathLength, _ => 0 };

    /// <summary>Writes the version 2 address block of the two endpoints (of the same family).</summary>
    public static int WriteAddresses(EndPoint? source, EndPoint? destination, Span<byte> destinationSpan)
    {
        switch (source, destination)
        {
            case (IPEndPoint from, IPEndPoint to):
                int size = from.AddressFamily == AddressFamily.InterNetwork ? 4 : 16;
                from.Address.TryWriteBytes(destinationSpan, out _);
                to.Address.TryWriteBytes(destinationSpan[size..], out _);
                BinaryPrimitives.WriteUInt16BigEndian(destinationSpan[(2 * size)..], (ushort)from.Port);
                BinaryPrimitives.WriteUInt16BigEndian(destinationSpan[((2 * size) + 2)..], (ushort)to.Port);
                return (2 * size) + 4;
            case (UnixDomainSocketEndPoint from, UnixDomainSocketEndPoint to):
                Span<byte> paths = destinationSpan[..(2 * UnixPathLength)];
                paths.Clear();
                WriteUnixPath(from, paths[..UnixPathLength]);
                WriteUnixPath(to, paths[UnixPathLength..]);
                return 2 * UnixPathLength;
            default:
                return 0;
        }
    }

    private static void WriteUnixPath(UnixDomainSocketEndPoint endpoint, Span<byte> field)
    {
        // sun_path as the platform encodes it, after the 2-byte family: an abstract name keeps its leading NUL (its
        // ToString, "@name", would come back as a file path).
        SocketAddress address = endpoint.Serialize();
        ReadOnlySpan<byte> path = address.Buffer.Span[2..address.Size].TrimEnd((byte)0);
        if (path.Length >= UnixPathLength)
        {
            throw new ArgumentException($"The Unix socket path '{endpoint}' does not fit the 108 bytes of a PROXY header.", nameof(endpoint));
        }

        path.CopyTo(field);
    }
}

/// <summary>CRC-32C (Castagnoli), as the PROXY protocol's checksum TLV uses it; the CPU's instruction where there is one.</summary>
internal static class Crc32c
{
    public const uint Seed = 0xFFFFFFFF;

    public static uint Compute(ReadOnlySpan<byte> data) => Finish(Append(Seed, data));

    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        while (data.Length >= 8)
        {
            crc = System.Numerics.BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }

        foreach (byte value in data)
        {
            crc = System.Numerics.BitOperations.Crc32C(crc, value);
        }

        return crc;
    }

    public static uint Finish(uint crc) => ~crc;
}
