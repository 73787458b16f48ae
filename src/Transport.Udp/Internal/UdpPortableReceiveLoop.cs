using System.Net;
using System.Net.Sockets;
using Transport.Internal;

namespace Transport.Udp.Internal;

/// <summary>Receives one datagram per call, on any OS, into one buffer for the life of the listener.</summary>
internal static class UdpPortableReceiveLoop
{
    public static async Task RunAsync(UdpReceiver receiver, RetryBackoff backoff)
    {
        // One byte more than the largest datagram tells an oversize one apart.
        byte[] buffer = GC.AllocateUninitializedArray<byte>(receiver.MaxDatagramSize + 1, pinned: true);
        Socket socket = receiver.Socket;
        var address = new SocketAddress(socket.AddressFamily);
        while (!receiver.IsClosed)
        {
            int received;
            try
            {
                int injected = receiver.Fault?.Invoke(false) ?? 0;
                received = injected == 0
                    ? await socket.ReceiveFromAsync(buffer, SocketFlags.None, address).ConfigureAwait(false)
                    : throw new SocketException((int)Transport.Internal.LinuxErrno.ToSocketError(injected));
            }
            catch (Exception ex)
            {
                if (!await receiver.OnReceiveExceptionAsync(ex, backoff).ConfigureAwait(false))
                {
                    return;
                }

                continue;
            }

            backoff.Succeed();
            if (received > receiver.MaxDatagramSize)
            {
                receiver.OnOversize(address);
                continue;
            }

            receiver.Dispatch(address, buffer.AsSpan(0, received));
        }
    }
}
