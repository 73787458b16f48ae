using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Transport.Internal;

namespace Transport.Udp.Internal;

/// <summary>
/// Linux: drains the socket with recvmmsg, up to <see cref="BatchSize"/> datagrams per system call, and waits for
/// readability with a zero-byte peek (which leaves the datagram queued). Per datagram that saves a system call
/// and the socket's async machinery. Replies the protocols flush while a batch is delivered leave together
/// (<see cref="UdpSendBatch"/>).
/// </summary>
internal static class UdpBatchReceiveLoop
{
    /// <summary>Datagrams per recvmmsg call (the C reference server uses the same).</summary>
    private const int BatchSize = 64;

    /// <summary>Receives until the socket closes (false), or until batching turns out unavailable (true: use the portable loop).</summary>
    public static async Task<bool> RunAsync(UdpReceiver receiver, RetryBackoff backoff)
    {
        LinuxDatagramBatch batch;
        try
        {
            // One byte more than the largest datagram tells an oversize one apart (the kernel cuts it to the slot).
            batch = new LinuxDatagramBatch(BatchSize, receiver.MaxDatagramSize + 1);
        }
        catch (OutOfMemoryException ex)
        {
            UdpLog.BatchReceiveUnavailable(receiver.Logger, receiver.Name, ex.Message);
            return true;
        }

        Socket socket = receiver.Socket;
        var address = new SocketAddress(socket.AddressFamily);
        var sends = new UdpSendBatch(socket, BatchSize);
        receiver.Sends = sends;
        try
        {
            SafeHandle handle = socket.SafeHandle;
            while (!receiver.IsClosed)
            {
                int count;
                int error;
                try
                {
                    int injected = receiver.Fault?.Invoke(true) ?? 0;
                    if (injected == 0)
                    {
                        count = batch.Receive(handle, out error);
                    }
                    else
                    {
                        (count, error) = (-1, injected);
                    }
                }
                catch (ObjectDisposedException)
                {
                    return false;
                }
                catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
                {
                    UdpLog.BatchReceiveUnavailable(receiver.Logger, receiver.Name, ex.Message);
                    return true;
                }

                if (count < 0)
                {
                    if (receiver.IsClosed)
                    {
                        return false;
                    }

                    SocketError socketError = Transport.Internal.LinuxErrno.ToSocketError(error);
                    if (UdpErrors.IsIgnoredOnReceive(socketError))
                    {
                        receiver.IgnoreError(socketError);
                        continue;
                    }

                    if (LinuxDatagramBatch.IsUnsupported(error))
                    {
                        UdpLog.BatchReceiveUnavailable(receiver.Logger, receiver.Name, $"errno {error}, {socketError}");
                        return true;
                    }

                    // ENOBUFS, ENOMEM or anything else: the socket is still good, and so is recvmmsg. Wait, then read again.
                    string errorType = socketError == SocketError.SocketError ? $"errno {error}" : socketError.ToString();
                    if (!await receiver.BackOffAsync(backoff, errorType, $"recvmmsg failed with errno {error}", null).ConfigureAwait(false))
                    {
                        return false;
                    }

                    continue;
                }

                if (count > 0)
                {
                    backoff.Succeed();
                }

                sends.BeginDelivery();
                for (int i = 0; i < count; i++)
                {
                    batch.CopyAddress(i, address);
                    int received = batch.ReceivedLength(i);
                    if (received > receiver.MaxDatagramSize)
                    {
                        receiver.OnOversize(address);
                        continue;
                    }

                    receiver.Dispatch(address, batch.Datagram(i, received));
                }

                if (sends.EndDelivery())
                {
                    await sends.DrainAsync().ConfigureAwait(false);
                }

                if (count == batch.Capacity)
                {
                    // A full batch: more are likely queued, so read again before paying for a readiness wait.
                    continue;
                }

                // Wait here rather than in a helper: an async helper would allocate its state machine each time it waits.
                try
                {
                    await socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.Peek).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    if (!await receiver.OnReceiveExceptionAsync(ex, backoff).ConfigureAwait(false))
                    {
                        return false;
                    }
                }
            }

            return false;
        }
        finally
        {
            // Started over after a fault or stopped: what was queued is lost, as a datagram may be.
            receiver.Sends = null;
            sends.Stop();
            sends.Dispose();
            batch.Dispose();
        }
    }
}
