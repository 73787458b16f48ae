using System.Buffers;
using System.Buffers.Binary;

namespace Transport.Framing;

/// <summary>
/// Messages preceded by their length: a 1, 2 or 4 byte unsigned integer, big-endian (network order) or
/// little-endian, counting the payload only. The message is the payload, a slice of the input.
/// </summary>
/// <remarks>
/// A declared length over <see cref="MaxMessageSize"/> (payload plus prefix) fails at once, before any of the
/// payload is buffered; a 4-byte prefix of 2^31 or more (a negative length to a signed reader) fails as
/// negative or overflowing. Zero-length messages are allowed. Stateless: one instance can serve every connection.
/// </remarks>
public sealed class LengthPrefixedFramer : IMessageFramer<ReadOnlySequence<byte>>
{
    private readonly int _prefixLength;
    private readonly bool _bigEndian;

    /// <summary>Creates the framer.</summary>
    /// <param name="prefixLength">The length prefix's size in bytes: 1, 2 or 4.</param>
    /// <param name="bigEndian">Big-endian (network order, the default) or little-endian.</param>
    /// <param name="maxMessageSize">The largest frame, prefix included; defaults to <see cref="FramerDefaults.MaxMessageSize"/>.</param>
    public LengthPrefixedFramer(int prefixLength = 4, bool bigEndian = true, int maxMessageSize = FramerDefaults.MaxMessageSize)
    {
        if (prefixLength is not (1 or 2 or 4))
        {
            throw new ArgumentOutOfRangeException(nameof(prefixLength), prefixLength, "The length prefix is 1, 2 or 4 bytes.");
        }

        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(maxMessageSize, prefixLength);
        _prefixLength = prefixLength;
        _bigEndian = bigEndian;
        MaxMessageSize = maxMessageSize;
    }

    /// <summary>The prefix size in bytes.</summary>
    public int PrefixLength => _prefixLength;

    /// <summary>Whether the prefix is big-endian.</summary>
    public bool IsBigEndian => _bigEndian;

    /// <inheritdoc />
    public int MaxMessageSize { get; }

    /// <inheritdoc />
    public bool TryParse(ref ReadOnlySequence<byte> input, out ReadOnlySequence<byte> message)
    {
        if (input.Length < _prefixLength)
        {
            message = default;
            return false;
        }

        uint length;
        ReadOnlySpan<byte> first = input.FirstSpan;
        if (first.Length >= _prefixLength)
        {
            length = ReadLength(first);
        }
        else
        {
            Span<byte> prefix = stackalloc byte[4];
            input.Slice(0, _prefixLength).CopyTo(prefix);
            length = ReadLength(prefix);
        }

        if (length > int.MaxValue)
        {
            throw new InvalidFrameException($"Invalid frame: the length prefix 0x{length:X8} is a negative or overflowing length.");
        }

        long frameLength = _prefixLength + (long)length;
        if (frameLength > MaxMessageSize)
        {
            throw InvalidFrameException.TooLarge(frameLength, MaxMessageSize);
        }

        if (input.Length < frameLength)
        {
            message = default;
            return false;
        }

        message = input.Slice(_prefixLength, length);
        input = input.Slice(message.End);
        return true;
    }

    /// <summary>Writes one frame, prefix and payload, straight into <paramref name="output"/> (not flushed).</summary>
    /// <param name="output">The connection's output, or any buffer writer.</param>
    /// <param name="payload">The payload.</param>
    /// <exception cref="ArgumentException">The frame would exceed <see cref="MaxMessageSize"/>.</exception>
    public void Write(IBufferWriter<byte> output, ReadOnlySpan<byte> payload)
    {
        ArgumentNullException.ThrowIfNull(output);
        CheckSize(payload.Length);
        Span<byte> prefix = output.GetSpan(_prefixLength);
        WriteLength(prefix, (uint)payload.Length);
        output.Advance(_prefixLength);
        output.Write(payload);
    }

    /// <summary>Writes one frame with a multi-segment payload straight into <paramref name="output"/> (not flushed).</summary>
    /// <param name="output">The connection's output, or any buffer writer.</param>
    /// <param name="payload">The payload.</param>
    /// <exception cref="ArgumentException">The frame would exceed <see cref="MaxMessageSize"/>.</exception>
    public void Write(IBufferWriter<byte> output, in ReadOnlySequence<byte> payload)
    {
        ArgumentNullException.ThrowIfNull(output);
        CheckSize(payload.Length);
        Span<byte> prefix = output.GetSpan(_prefixLength);
        WriteLength(prefix, (uint)payload.Length);
        output.Advance(_prefixLength);
        foreach (ReadOnlyMemory<byte> segment in payload)
        {
            output.Write(segment.Span);
        }
    }

    /// <summary>
    /// Writes one frame whose payload <paramref name="writePayload"/> serializes directly into the output's memory,
    /// after the space reserved for the prefix; the prefix is filled in afterwards. No copy of the payload is made.
    /// </summary>
    /// <typeparam name="TState">The callback's state.</typeparam>
    /// <param name="output">The connection's output, or any buffer writer.</param>
    /// <param name="maxPayloadLength">An upper bound on the payload's length.</param>
    /// <param name="state">Passed to <paramref name="writePayload"/>.</param>
    /// <param name="writePayload">Writes the payload and returns its length (a static lambda allocates nothing).</param>
    /// <exception cref="ArgumentException">The frame would exceed <see cref="MaxMessageSize"/>.</exception>
    public void Write<TState>(IBufferWriter<byte> output, int maxPayloadLength, TState state, FramePayloadWriter<TState> writePayload)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(writePayload);
        ArgumentOutOfRangeException.ThrowIfNegative(maxPayloadLength);
        CheckSize(maxPayloadLength);
        Span<byte> frame = output.GetSpan(_prefixLength + maxPayloadLength);
        int written = writePayload(frame.Slice(_prefixLength, maxPayloadLength), state);
        if ((uint)written > (uint)maxPayloadLength)
        {
            throw new InvalidOperationException($"The payload writer reported {written} bytes; at most {maxPayloadLength} were allowed.");
        }

        WriteLength(frame, (uint)written);
        output.Advance(_prefixLength + written);
    }

    private void CheckSize(long payloadLength)
    {
        if (_prefixLength + payloadLength > MaxMessageSize || (_prefixLength == 1 && payloadLength > byte.MaxValue)
            || (_prefixLength == 2 && payloadLength > ushort.MaxValue))
        {
            throw new ArgumentException(
                $"A {payloadLength}-byte payload does not fit a frame with a {_prefixLength}-byte prefix and a maximum message size of {MaxMessageSize} bytes.",
                nameof(payloadLength));
        }
    }

    private uint ReadLength(ReadOnlySpan<byte> prefix) => _prefixLength switch
    {
        1 => prefix[0],
        2 => _bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(prefix) : BinaryPrimitives.ReadUInt16LittleEndian(prefix),
        _ => _bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(prefix) : BinaryPrimitives.ReadUInt32LittleEndian(prefix),
    };

    private void WriteLength(Span<byte> prefix, uint length)
    {
        switch (_prefixLength)
        {
            case 1:
                prefix[0] = (byte)length;
                break;
            case 2 when _bigEndian:
                BinaryPrimitives.WriteUInt16BigEndian(prefix, (ushort)length);
                break;
            case 2:
                BinaryPrimitives.WriteUInt16LittleEndian(prefix, (ushort)length);
                break;
            case 4 when _bigEndian:
                BinaryPrimitives.WriteUInt32BigEndian(prefix, length);
                break;
            default:
                BinaryPrimitives.WriteUInt32LittleEndian(prefix, length);
                break;
        }
    }
}
