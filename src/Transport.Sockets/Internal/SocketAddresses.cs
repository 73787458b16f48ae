using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Transport.Sockets.Internal;

/// <summary>Linux <c>struct sockaddr</c> bytes, as accept4 and getsockname give them, turned into the endpoints .NET's Socket reports.</summary>
internal static class SocketAddresses
{
    /// <summary>The size of <c>struct sockaddr_storage</c>: room for any address.</summary>
    public const int MaxLength = 128;

    private const ushort AF_UNIX = 1;
    private const ushort AF_INET = 2;
    private const ushort AF_INET6 = 10;

    /// <summary>
    /// The endpoint in <paramref name="address"/>; null for a family we do not know. A Unix address is read by
    /// <paramref name="listener"/> (its <see cref="EndPoint.Create(SocketAddress)"/>), as .NET's Socket reads it.
    /// </summary>
    public static EndPoint? ToEndPoint(ReadOnlySpan<byte> address, EndPoint listener)
    {
        if (address.Length < sizeof(ushort))
        {
            return null;
        }

        // sa_family is in host order; the port is in network order.
        switch (MemoryMarshal.Read<ushort>(address))
        {
            case AF_INET when address.Length >= 8:
                return new IPEndPoint(new IPAddress(address.Slice(4, 4)), BinaryPrimitives.ReadUInt16BigEndian(address[2..]));
            case AF_INET6 when address.Length >= 28:
                // sockaddr_in6: family, port, flow info (4), address (16), scope id (4).
                uint scope = MemoryMarshal.Read<uint>(address[24..]);
                return new IPEndPoint(new IPAddress(address.Slice(8, 16), scope), BinaryPrimitives.ReadUInt16BigEndian(address[2..]));
            case AF_UNIX when listener is UnixDomainSocketEndPoint:
                var socketAddress = new SocketAddress(AddressFamily.Unix, address.Length);
                address.CopyTo(socketAddress.Buffer.Span);
                return listener.Create(socketAddress);
            default:
                return null;
        }
    }
}
