using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Transport.Udp.Internal;

/// <summary>
/// Linux batched datagram I/O on a socket's handle: <c>recvmmsg</c> fills up to <see cref="Capacity"/> slots in
/// one system call, <c>sendmmsg</c> sends a batch of queued datagrams in one. All memory (slots, addresses,
/// headers) is native and allocated once, so a batch costs no managed allocation. The socket is used with
/// <c>MSG_DONTWAIT</c> only; waiting for readability stays with the <see cref="Socket"/>'s own event loop.
/// </summary>
internal sealed unsafe partial class LinuxDatagramBatch : IDisposable
{
    private const int MsgDontWait = 0x40;
    private const int AddressSize = 128; // sizeof(struct sockaddr_storage)

    private readonly int _slotSize;
    private readonly byte[]? _array;
    private readonly byte* _data;
    private readonly byte* _addresses;
    private readonly IoVec* _iov;
    private readonly MMsgHdr* _headers;

    /// <param name="capacity">Datagrams per system call.</param>
    /// <param name="slotSize">Bytes per datagram slot. The memory is only reserved: pages the kernel never writes
    /// to (the tail of a slot beyond small datagrams) are never backed, so a 64 KiB slot for 64 B traffic costs a page.</param>
    /// <param name="managed">Slots in a pinned managed array, so that <see cref="SlotMemory"/> can hand one to the
    /// <see cref="Socket"/> API (sends that have to wait); otherwise native.</param>
    public LinuxDatagramBatch(int capacity, int slotSize, bool managed = false)
    {
        Capacity = capacity;
        _slotSize = slotSize;
        if (managed)
        {
            _array = GC.AllocateUninitializedArray<byte>(capacity * slotSize, pinned: true);
            _data = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array));
        }
        else
        {
            _data = (byte*)NativeMemory.Alloc((nuint)capacity * (nuint)slotSize);
        }

        _addresses = (byte*)NativeMemory.AllocZeroed((nuint)capacity * AddressSize);
        _iov = (IoVec*)NativeMemory.AllocZeroed((nuint)capacity, (nuint)sizeof(IoVec));
        _headers = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)capacity, (nuint)sizeof(MMsgHdr));
        for (int i = 0; i < capacity; i++)
        {
            _iov[i].Base = _data + ((nint)i * slotSize);
            _headers[i].Header.Iov = &_iov[i];
            _headers[i].Header.IovLen = 1;
        }
    }

    public int Capacity { get; }

    public int SlotSize => _slotSize;

    /// <summary>Whether this process can use the batch calls at all (Linux, and libc exports them).</summary>
    public static bool IsSupported => OperatingSystem.IsLinux();

    /// <summary>
    /// Receives up to <see cref="Capacity"/> datagrams without blocking. Returns the count (0 when none is
    /// waiting), or -1 with <paramref name="error"/> set to the <c>errno</c>.
    /// </summary>
    public int Receive(SafeHandle socket, out int error)
    {
        for (int i = 0; i < Capacity; i++)
        {
            ref MsgHdr header = ref _headers[i].Header;
            header.Name = _addresses + ((nint)i * AddressSize);
            header.NameLen = AddressSize;
            header.Flags = 0;
            _iov[i].Length = (nuint)_slotSize;
        }

        return Call(socket, receive: true, Capacity, out error);
    }

    /// <summary>The received length of slot <paramref name="index"/> (which may be larger than the slot if the datagram was cut short).</summary>
    public int ReceivedLength(int index) => (int)_headers[index].Length;

    public ReadOnlySpan<byte> Datagram(int index, int length) => new(_data + ((nint)index * _slotSize), length);

    /// <summary>Copies the sender of slot <paramref name="index"/> into <paramref name="address"/> (which must be large enough).</summary>
    public void CopyAddress(int index, SocketAddress address)
    {
        int length = (int)Math.Min(_headers[index].Header.NameLen, (uint)address.Buffer.Length);
        new ReadOnlySpan<byte>(_addresses + ((nint)index * AddressSize), length).CopyTo(address.Buffer.Span);
        address.Size = length;
    }

    /// <summary>Slot <paramref name="index"/> as a place to build an outgoing datagram (up to the slot size).</summary>
    public Span<byte> SendSlot(int index) => new(_data + ((nint)index * _slotSize), _slotSize);

    /// <summary>Sets up slot <paramref name="index"/> to send <paramref name="length"/> bytes to <paramref name="address"/>.</summary>
    public void PrepareSend(int index, int length, SocketAddress address)
    {
        ReadOnlySpan<byte> source = address.Buffer.Span[..address.Size];
        source.CopyTo(new Span<byte>(_addresses + ((nint)index * AddressSize), AddressSize));
        ref MsgHdr header = ref _headers[index].Header;
        header.Name = _addresses + ((nint)index * AddressSize);
        header.NameLen = (uint)address.Size;
        header.Flags = 0;
        _iov[index].Length = (nuint)length;
    }

    /// <summary>
    /// Sends slots <paramref name="start"/> onwards, <paramref name="count"/> of them, without blocking. Returns how
    /// many the kernel took (it stops at the first that fails), or -1 with <paramref name="error"/> set to the <c>errno</c>
    /// of the first.
    /// </summary>
    public int Send(SafeHandle socket, int start, int count, out int error) => Call(socket, receive: false, count, out error, start);

    /// <summary>Slot <paramref name="index"/> of a managed batch as memory.</summary>
    public ReadOnlyMemory<byte> SlotMemory(int index, int length) => _array!.AsMemory(index * _slotSize, length);

    public void Dispose()
    {
        if (_array is null)
        {
            NativeMemory.Free(_data);
        }

        NativeMemory.Free(_addresses);
        NativeMemory.Free(_iov);
        NativeMemory.Free(_headers);
    }

    /// <summary>Whether <paramref name="errno"/> says this kernel or sandbox does not offer the batch calls (ENOSYS, EOPNOTSUPP, EPERM from a seccomp filter).</summary>
    public static bool IsUnsupported(int errno) => errno is 38 or 95 or 1;

    private int Call(SafeHandle socket, bool receive, int count, out int error, int start = 0)
    {
        // The reference keeps the descriptor from being closed (and its number reused) while the kernel uses it.
        bool added = false;
        try
        {
            socket.DangerousAddRef(ref added);
            int fd = (int)socket.DangerousGetHandle();
            while (true)
            {
                int result = receive
                    ? recvmmsg(fd, _headers + start, (uint)count, MsgDontWait, null)
                    : sendmmsg(fd, _headers + start, (uint)count, MsgDontWait);
                if (result >= 0)
                {
                    error = 0;
                    return result;
                }

                error = Marshal.GetLastPInvokeError();
                if (error == Transport.Internal.LinuxErrno.EINTR)
                {
                    continue;
                }

                if (error == Transport.Internal.LinuxErrno.EAGAIN)
                {
                    return 0;
                }

                return -1;
            }
        }
        finally
        {
            if (added)
            {
                socket.DangerousRelease();
            }
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int recvmmsg(int fd, MMsgHdr* messages, uint count, int flags, void* timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sendmmsg(int fd, MMsgHdr* messages, uint count, int flags);

    // struct iovec, struct msghdr, struct mmsghdr: natural C layout on both 32- and 64-bit (glibc and musl on
    // little-endian agree: musl's int + padding reads the same as a size_t below 2^32).
    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public byte* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public byte* Name;
        public uint NameLen;
        public IoVec* Iov;
        public nuint IovLen;
        public void* Control;
        public nuint ControlLen;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MMsgHdr
    {
        public MsgHdr Header;
        public uint Length;
    }
}
