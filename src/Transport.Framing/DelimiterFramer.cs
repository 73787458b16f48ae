using System.Buffers;

namespace Transport.Framing;

/// <summary>
/// Messages ended by a delimiter (one or more bytes, e.g. <c>\0</c> or <c>\r\n\r\n</c>). The message is the bytes
/// before the delimiter, a slice of the input; the delimiter is consumed and not part of it.
/// </summary>
/// <remarks>
/// A message longer than <see cref="MaxMessageSize"/> (delimiter included) fails as soon as that many bytes are
/// buffered without a delimiter. Stateless: one instance can serve every connection. For text lines that may end
/// in <c>\n</c> or <c>\r\n</c>, use <see cref="LineFramer"/>.
/// </remarks>
public sealed class DelimiterFramer : IMessageFramer<ReadOnlySequence<byte>>
{
    private readonly byte[] _delimiter;

    /// <summary>Creates the framer.</summary>
    /// <param name="delimiter">The bytes that end a message; not empty.</param>
    /// <param name="maxMessageSize">The largest message, delimiter included; defaults to <see cref="FramerDefaults.MaxMessageSize"/>.</param>
    public DelimiterFramer(ReadOnlySpan<byte> delimiter, int maxMessageSize = FramerDefaults.MaxMessageSize)
    {
        if (delimiter.IsEmpty)
        {
            throw new ArgumentException("The delimiter is empty.", nameof(delimiter));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessageSize, delimiter.Length);
        _delimiter = delimiter.ToArray();
        MaxMessageSize = maxMessageSize;
    }

    /// <summary>The bytes that end a message.</summary>
    public ReadOnlySpan<byte> Delimiter => _delimiter;

    /// <inheritdoc />
    public int MaxMessageSize { get; }

    /// <inheritdoc />
    public bool TryParse(ref ReadOnlySequence<byte> input, out ReadOnlySequence<byte> message)
    {
        var reader = new SequenceReader<byte>(input);
        bool found = _delimiter.Length == 1
            ? reader.TryReadTo(out message, _delimiter[0], advancePastDelimiter: true)
            : reader.TryReadTo(out message, _delimiter, advancePastDelimiter: true);
        if (!found)
        {
            if (input.Length > MaxMessageSize)
            {
                throw new InvalidFrameException(
                    $"Invalid frame: no delimiter within the maximum message size of {MaxMessageSize} bytes.");
            }

            message = default;
            return false;
        }

        if (message.Length + _delimiter.Length > MaxMessageSize)
        {
            throw InvalidFrameException.TooLarge(message.Length + _delimiter.Length, MaxMessageSize);
        }

        input = input.Slice(reader.Position);
        return true;
    }

    /// <summary>Writes the payload and the delimiter into <paramref name="output"/> (not flushed).</summary>
    /// <param name="output">The connection's output, or any buffer writer.</param>
    /// <param name="payload">
    /// The payload; it must not contain the delimiter, nor end with bytes that make a delimiter with the start of
    /// the one written after it (with <c>\r\n\r\n</c>, a payload ending in <c>\r\n</c>).
    /// </param>
    /// <exception cref="ArgumentException">The payload contains the delimiter, ends in part of one, or is too large.</exception>
    public void Write(IBufferWriter<byte> output, ReadOnlySpan<byte> payload)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (payload.Length + _delimiter.Length > MaxMessageSize)
        {
            throw new ArgumentException($"A {payload.Length}-byte payload exceeds the maximum message size of {MaxMessageSize} bytes.", nameof(payload));
        }

        if (payload.IndexOf(_delimiter) >= 0)
        {
            throw new ArgumentException("The payload contains the delimiter; the peer would see two messages.", nameof(payload));
        }

        if (EndsInsideDelimiter(payload))
        {
            throw new ArgumentException(
                "The payload ends with the start of a delimiter that the written delimiter completes; the peer would see the message cut short.",
                nameof(payload));
        }

        output.Write(payload);
        output.Write(_delimiter);
    }

    /// <summary>
    /// Whether payload + delimiter holds an earlier delimiter that starts in the payload's last bytes: the reader
    /// cuts at the first one. It takes a delimiter that overlaps itself (<c>aa</c>, <c>\r\n\r\n</c>).
    /// </summary>
    private bool EndsInsideDelimiter(ReadOnlySpan<byte> payload)
    {
        ReadOnlySpan<byte> delimiter = _delimiter;
        for (int tail = Math.Min(delimiter.Length - 1, payload.Length); tail > 0; tail--)
        {
            if (payload[^tail..].SequenceEqual(delimiter[..tail]) && delimiter[tail..].SequenceEqual(delimiter[..^tail]))
            {
                return true;
            }
        }

        return false;
    }
}
