using System.Buffers;

namespace Transport.Framing;

/// <summary>Reads a message body's length from a fixed-size header.</summary>
/// <param name="header">The whole header.</param>
/// <returns>The body's length in bytes; a negative value is rejected as an invalid frame.</returns>
public delegate int FrameBodyLengthReader(ReadOnlySpan<byte> header);

/// <summary>One message of a <see cref="FixedHeaderFramer"/>: its header and its body, slices of the input.</summary>
/// <param name="Header">The fixed-size header.</param>
/// <param name="Body">The body, as long as the header said.</param>
public readonly record struct FixedHeaderFrame(ReadOnlySequence<byte> Header, ReadOnlySequence<byte> Body);

/// <summary>
/// Messages made of a fixed-size header that says how long the body is (types, flags, ids and a length: most
/// binary protocols). You give the header size and a function that reads the body length from the header.
/// </summary>
/// <remarks>
/// The header is handed to the length reader as one contiguous span (copied to the stack when it spans
/// segments, so at most 256 bytes). A negative body length or a frame over <see cref="MaxMessageSize"/> fails at
/// once, before the body is buffered. Stateless when the length reader is: one instance can serve every connection.
/// </remarks>
public sealed class FixedHeaderFramer : IMessageFramer<FixedHeaderFrame>
{
    private const int MaxHeaderLength = 256;
    private readonly FrameBodyLengthReader _bodyLength;

    /// <summary>Creates the framer.</summary>
    /// <param name="headerLength">The header's size in bytes, 1 to 256.</param>
    /// <param name="bodyLength">Reads the body length from a header (a static lambda allocates nothing).</param>
    /// <param name="maxMessageSize">The largest frame, header included; defaults to <see cref="FramerDefaults.MaxMessageSize"/>.</param>
    public FixedHeaderFramer(int headerLength, FrameBodyLengthReader bodyLength, int maxMessageSize = FramerDefaults.MaxMessageSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(headerLength, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(headerLength, MaxHeaderLength);
        ArgumentNullException.ThrowIfNull(bodyLength);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessageSize, headerLength);
        HeaderLength = headerLength;
        _bodyLength = bodyLength;
        MaxMessageSize = maxMessageSize;
    }

    /// <summary>The header's size in bytes.</summary>
    public int HeaderLength { get; }

    /// <inheritdoc />
    public int MaxMessageSize { get; }

    /// <inheritdoc />
    public bool TryParse(ref ReadOnlySequence<byte> input, out FixedHeaderFrame message)
    {
        if (input.Length < HeaderLength)
        {
            message = default;
            return false;
        }

        ReadOnlySequence<byte> header = input.Slice(0, HeaderLength);
        int bodyLength;
        if (header.IsSingleSegment)
        {
            bodyLength = _bodyLength(header.FirstSpan);
        }
        else
        {
            Span<byte> copy = stackalloc byte[MaxHeaderLength];
            header.CopyTo(copy);
            bodyLength = _bodyLength(copy[..HeaderLength]);
        }

        if (bodyLength < 0)
        {
            throw new InvalidFrameException($"Invalid frame: the header declares a negative body length ({bodyLength}).");
        }

        long frameLength = (long)HeaderLength + bodyLength;
        if (frameLength > MaxMessageSize)
        {
            throw InvalidFrameException.TooLarge(frameLength, MaxMessageSize);
        }

        if (input.Length < frameLength)
        {
            message = default;
            return false;
        }

        ReadOnlySequence<byte> body = input.Slice(header.End, bodyLength);
        message = new FixedHeaderFrame(header, body);
        input = input.Slice(body.End);
        return true;
    }

    /// <summary>Writes a header and a body into <paramref name="output"/> (not flushed).</summary>
    /// <param name="output">The connection's output, or any buffer writer.</param>
    /// <param name="header">Exactly <see cref="HeaderLength"/> bytes, declaring <paramref name="body"/>'s length.</param>
    /// <param name="body">The body.</param>
    /// <exception cref="ArgumentException">The header has the wrong size or declares another length, or the frame is too large.</exception>
    public void Write(IBufferWriter<byte> output, ReadOnlySpan<byte> header, ReadOnlySpan<byte> body)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (header.Length != HeaderLength)
        {
            throw new ArgumentException($"The header is {header.Length} bytes; this framer's headers are {HeaderLength} bytes.", nameof(header));
        }

        if (_bodyLength(header) != body.Length)
        {
            throw new ArgumentException($"The header declares {_bodyLength(header)} bytes of body; the body is {body.Length} bytes.", nameof(header));
        }

        if (HeaderLength + body.Length > MaxMessageSize)
        {
            throw new ArgumentException($"A {body.Length}-byte body exceeds the maximum message size of {MaxMessageSize} bytes.", nameof(body));
        }

        output.Write(header);
        output.Write(body);
    }
}
