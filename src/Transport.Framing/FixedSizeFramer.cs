using System.Buffers;

namespace Transport.Framing;

/// <summary>Messages of one fixed size. The message is a slice of the input.</summary>
/// <remarks>Stateless: one instance can serve every connection.</remarks>
public sealed class FixedSizeFramer : IMessageFramer<ReadOnlySequence<byte>>
{
    /// <summary>Creates the framer.</summary>
    /// <param name="size">Every message's size in bytes; at least 1.</param>
    public FixedSizeFramer(int size)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        Size = size;
    }

    /// <summary>Every message's size in bytes.</summary>
    public int Size { get; }

    /// <inheritdoc />
    public int MaxMessageSize => Size;

    /// <inheritdoc />
    public bool TryParse(ref ReadOnlySequence<byte> input, out ReadOnlySequence<byte> message)
    {
        if (input.Length < Size)
        {
            message = default;
            return false;
        }

        message = input.Slice(0, Size);
        input = input.Slice(message.End);
        return true;
    }

    /// <summary>Writes one message into <paramref name="output"/> (not flushed).</summary>
    /// <param name="output">The connection's output, or any buffer writer.</param>
    /// <param name="message">Exactly <see cref="Size"/> bytes.</param>
    /// <exception cref="ArgumentException">The message is not <see cref="Size"/> bytes.</exception>
    public void Write(IBufferWriter<byte> output, ReadOnlySpan<byte> message)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (message.Length != Size)
        {
            throw new ArgumentException($"The message is {message.Length} bytes; this framer's messages are {Size} bytes.", nameof(message));
        }

        output.Write(message);
    }
}
