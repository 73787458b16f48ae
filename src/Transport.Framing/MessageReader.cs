using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;

namespace Transport.Framing;

/// <summary>
/// Reads whole messages from a connection's input with a framer, in the shape of
/// <see cref="System.Threading.Channels.ChannelReader{T}"/>: <see cref="WaitToReadAsync"/> waits until at least
/// one message is buffered, <see cref="TryRead"/> takes the buffered ones without waiting. Handle a batch, flush
/// once, wait again:
/// <code>
/// var reader = new MessageReader&lt;ReadOnlySequence&lt;byte&gt;&gt;(connection.Transport.Input, framer);
/// while (await reader.WaitToReadAsync())
/// {
///     while (reader.TryRead(out ReadOnlySequence&lt;byte&gt; message)) { /* write a reply */ }
///     await connection.Transport.Output.FlushAsync();
/// }
/// </code>
/// </summary>
/// <typeparam name="TMessage">The framer's message type.</typeparam>
/// <remarks>
/// <para>
/// Partial reads and multi-segment buffers are the reader's business: bytes that do not yet make a whole
/// message stay in the pipe (consumed up to the last whole message, examined to the end, so the next read waits
/// for new bytes instead of returning the same ones). A message is valid until the next
/// <see cref="WaitToReadAsync"/>, which releases the bytes it was cut from.
/// </para>
/// <para>
/// Bad input throws <see cref="InvalidFrameException"/>: more than the framer's
/// <see cref="IMessageFramer{TMessage}.MaxMessageSize"/> bytes buffered without a whole message, a whole message
/// larger than that, a framer's own rejection, or the stream ending inside a message.
/// </para>
/// <para>
/// On a datagram transport each read is one datagram, so the framer sees each datagram whole and a message never
/// spans two datagrams; bytes left at the end of a datagram that do not make a whole message are dropped by the
/// transport rather than joined with the next datagram.
/// </para>
/// <para>Not thread-safe: one reader per connection, used by one loop.</para>
/// </remarks>
public sealed class MessageReader<TMessage>
{
    private readonly PipeReader _input;
    private readonly IMessageFramer<TMessage> _framer;
    private ReadOnlySequence<byte> _buffer;
    private TMessage? _message;
    private bool _hasMessage;
    private bool _holdingBuffer;
    private bool _needMoreData;
    private bool _completed;

    /// <summary>Creates a reader over <paramref name="input"/>.</summary>
    /// <param name="input">The connection's input, e.g. <c>connection.Transport.Input</c>.</param>
    /// <param name="framer">Cuts the bytes into messages.</param>
    public MessageReader(PipeReader input, IMessageFramer<TMessage> framer)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(framer);
        if (framer.MaxMessageSize <= 0)
        {
            throw new ArgumentException($"The framer's MaxMessageSize must be positive; it is {framer.MaxMessageSize}.", nameof(framer));
        }

        _input = input;
        _framer = framer;
    }

    /// <summary>Whether the input has ended and every whole message was read.</summary>
    public bool IsCompleted => _completed && !_hasMessage && (!_holdingBuffer || _buffer.IsEmpty);

    /// <summary>
    /// Waits until a whole message is buffered. Releases the bytes of the messages read before, so those messages
    /// are no longer valid after this call.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait (the pending read throws <see cref="OperationCanceledException"/>).</param>
    /// <returns>
    /// <see langword="true"/> when <see cref="TryRead"/> has a message; <see langword="false"/> when the input ended
    /// cleanly, or when the pending read was canceled with <see cref="PipeReader.CancelPendingRead"/> (a later call
    /// carries on where this one stopped).
    /// </returns>
    /// <exception cref="InvalidFrameException">The input is not valid framing, or ended inside a message.</exception>
    public ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default)
    {
        if (_hasMessage || (_holdingBuffer && !_needMoreData && TryParseNext()))
        {
            return new ValueTask<bool>(true);
        }

        return WaitForMessageAsync(cancellationToken);
    }

    /// <summary>Takes the next buffered message, if there is a whole one, without waiting.</summary>
    /// <param name="message">The message; valid until the next <see cref="WaitToReadAsync"/>.</param>
    /// <returns><see langword="true"/> when a message was taken.</returns>
    /// <exception cref="InvalidFrameException">The framer rejected the buffered bytes.</exception>
    public bool TryRead([MaybeNullWhen(false)] out TMessage message)
    {
        if (_hasMessage || (_holdingBuffer && !_needMoreData && TryParseNext()))
        {
            message = _message!;
            _message = default;
            _hasMessage = false;
            return true;
        }

        message = default;
        return false;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> WaitForMessageAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_holdingBuffer)
            {
                // The framer wants more than what is buffered.
                if (_buffer.Length > _framer.MaxMessageSize)
                {
                    throw new InvalidFrameException(
                        $"Invalid frame: {_buffer.Length} bytes buffered without a whole message; the maximum message size is {_framer.MaxMessageSize} bytes.");
                }

                if (_completed)
                {
                    long left = _buffer.Length;
                    _input.AdvanceTo(_buffer.End);
                    _holdingBuffer = false;
                    _buffer = default;
                    if (left > 0)
                    {
                        throw new InvalidFrameException($"Invalid frame: the input ended inside a message, {left} bytes into it.");
                    }

                    return false;
                }

                // Consumed: up to the last whole message. Examined: everything, so the next read waits for new bytes.
                _input.AdvanceTo(_buffer.Start, _buffer.End);
                _holdingBuffer = false;
                _buffer = default;
            }
            else if (_completed)
            {
                return false;
            }

            ReadResult result = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
            _buffer = result.Buffer;
            _holdingBuffer = true;
            _needMoreData = false;
            _completed = result.IsCompleted;
            if (TryParseNext())
            {
                return true;
            }

            if (result.IsCanceled)
            {
                return false;
            }
        }
    }

    private bool TryParseNext()
    {
        ReadOnlySequence<byte> rest = _buffer;
        if (_framer.TryParse(ref rest, out TMessage? message))
        {
            long consumed = _buffer.Length - rest.Length;
            if (consumed <= 0)
            {
                throw new InvalidOperationException(
                    $"The framer {_framer.GetType().Name} returned a message without consuming any input; a message must consume at least one byte.");
            }

            if (consumed > _framer.MaxMessageSize)
            {
                throw new InvalidFrameException(
                    $"Invalid frame: a {consumed}-byte message is more than the maximum message size of {_framer.MaxMessageSize} bytes.");
            }

            _buffer = rest;
            _message = message;
            _hasMessage = true;
            return true;
        }

        _needMoreData = true;
        return false;
    }
}
