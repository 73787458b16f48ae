using System.Buffers;

namespace Transport.Framing;

/// <summary>
/// Text lines: messages ended by <c>\n</c>, with a <c>\r</c> before it removed too, so both <c>\r\n</c> and
/// <c>\n</c> peers work. The message is the line without its ending, a slice of the input.
/// </summary>
/// <remarks>
/// A line longer than <see cref="MaxMessageSize"/> (ending included) fails as soon as that many bytes are
/// buffered without a line feed. <see cref="Write"/> ends lines with <c>\r\n</c>. Stateless: one instance can
/// serve every connection.
/// </remarks>
public sealed class LineFramer : IMessageFramer<ReadOnlySequence<byte>>
{
    /// <summary>Creates the framer.</summary>
    /// <param name="maxMessageSize">The longest line, ending included; defaults to <see cref="FramerDefaults.MaxMessageSize"/>.</param>
    public LineFramer(int maxMessageSize = FramerDefaults.MaxMessageSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessageSize, 2);
        MaxMessageSize = maxMessageSize;
    }

    /// <inheritdoc />
    public int MaxMessageSize { get; }

    /// <inheritdoc />
    public bool TryParse(ref ReadOnlySequence<byte> input, out ReadOnlySequence<byte> message)
    {
        var reader = new SequenceReader<byte>(input);
        if (!reader.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\n', advancePastDelimiter: true))
        {
            if (input.Length > MaxMessageSize)
            {
                throw new InvalidFrameException($"Invalid frame: no line feed within the maximum line length of {MaxMessageSize} bytes.");
            }

            message = default;
            return false;
        }

        if (line.Length + 1 > MaxMessageSize)
        {
            throw InvalidFrameException.TooLarge(line.Length + 1, MaxMessageSize);
        }

        if (!line.IsEmpty && EndsWithCarriageReturn(line))
        {
            line = line.Slice(0, line.Length - 1);
        }

        message = line;
        input = input.Slice(reader.Position);
        return true;
    }

    /// <summary>Writes the line and <c>\r\n</c> into <paramref name="output"/> (not flushed).</summary>
    /// <param name="output">The connection's output, or any buffer writer.</param>
    /// <param name="line">The line, without an ending; it must not contain <c>\n</c>.</param>
    /// <exception cref="ArgumentException">The line contains a line feed, or is too long.</exception>
    public void Write(IBufferWriter<byte> output, ReadOnlySpan<byte> line)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (line.Length + 2 > MaxMessageSize)
        {
            throw new ArgumentException($"A {line.Length}-byte line exceeds the maximum line length of {MaxMessageSize} bytes.", nameof(line));
        }

        if (line.Contains((byte)'\n'))
        {
            throw new ArgumentException("The line contains a line feed; the peer would see two lines.", nameof(line));
        }

        Span<byte> span = output.GetSpan(line.Length + 2);
        line.CopyTo(span);
        span[line.Length] = (byte)'\r';
        span[line.Length + 1] = (byte)'\n';
        output.Advance(line.Length + 2);
    }

    private static bool EndsWithCarriageReturn(in ReadOnlySequence<byte> line)
    {
        if (line.IsSingleSegment)
        {
            return line.FirstSpan[^1] == (byte)'\r';
        }

        ReadOnlySequence<byte> last = line.Slice(line.Length - 1);
        return last.FirstSpan[0] == (byte)'\r';
    }
}
