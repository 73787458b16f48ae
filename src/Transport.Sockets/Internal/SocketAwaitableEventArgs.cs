using System.Buffers;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace Transport.Sockets.Internal;

/// <summary>
/// A reusable socket operation awaited as a <see cref="ValueTask{Int32}"/>: no allocation per receive or send.
/// The continuation runs on the thread that completed the operation (no extra thread-pool hop).
/// </summary>
internal sealed class SocketAwaitableEventArgs : SocketAsyncEventArgs, IValueTaskSource<int>
{
    /// <summary>
    /// The most segments one send passes to the OS. On Unix, .NET gathers a buffer list on the stack only up to
    /// 8 entries (Linux's UIO_FASTIOV); beyond that every send allocates two arrays. The rest of a longer
    /// sequence goes in the next send.
    /// </summary>
    public const int MaxSendSegments = 8;

    private ManualResetValueTaskSourceCore<int> _source;
    private List<ArraySegment<byte>>? _bufferList;

    public SocketAwaitableEventArgs()
        : base(unsafeSuppressExecutionContextFlow: true)
    {
    }

    public ValueTask<int> ReceiveAsync(Socket socket, Memory<byte> buffer)
    {
        SetBuffer(buffer);
        _source.Reset();
        return socket.ReceiveAsync(this) ? new ValueTask<int>(this, _source.Version) : CompletedSynchronously();
    }

    /// <summary>Sends the start of <paramref name="buffer"/>: all of it unless it has more than <see cref="MaxSendSegments"/> segments.</summary>
    /// <returns>The bytes sent.</returns>
    public ValueTask<int> SendAsync(Socket socket, in ReadOnlySequence<byte> buffer)
    {
        if (buffer.IsSingleSegment)
        {
            if (BufferList is not null)
            {
                BufferList = null;
            }

            SetBuffer(MemoryMarshal.AsMemory(buffer.First));
        }
        else
        {
            SetBuffer(null, 0, 0);
            List<ArraySegment<byte>> list = _bufferList ??= new List<ArraySegment<byte>>(8);
            list.Clear();
            foreach (ReadOnlyMemory<byte> segment in buffer)
            {
                if (!MemoryMarshal.TryGetArray(segment, out ArraySegment<byte> array))
                {
                    throw new InvalidOperationException("The socket transport needs array-backed buffers.");
                }

                list.Add(array);
                if (list.Count == MaxSendSegments)
                {
                    break;
                }
            }

            BufferList = list;
        }

        _source.Reset();
        return socket.SendAsync(this) ? new ValueTask<int>(this, _source.Version) : CompletedSynchronously();
    }

    /// <summary>Forgets the buffers of the last operation, so that a pooled instance holds on to nothing.</summary>
    public void ReleaseBuffers()
    {
        if (BufferList is not null)
        {
            BufferList = null;
        }

        _bufferList?.Clear();
        SetBuffer(null, 0, 0);
    }

    private ValueTask<int> CompletedSynchronously() =>
        SocketError == SocketError.Success
            ? new ValueTask<int>(BytesTransferred)
            : ValueTask.FromException<int>(new SocketException((int)SocketError));

    protected override void OnCompleted(SocketAsyncEventArgs e)
    {
        if (SocketError == SocketError.Success)
        {
            _source.SetResult(BytesTransferred);
        }
        else
        {
            _source.SetException(new SocketException((int)SocketError));
        }
    }

    int IValueTaskSource<int>.GetResult(short token) => _source.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<int>.GetStatus(short token) => _source.GetStatus(token);

    void IValueTaskSource<int>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _source.OnCompleted(continuation, state, token, flags);
}
