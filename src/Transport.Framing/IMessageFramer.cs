using System.Buffers;
using System.Diagnostics.CodeAnalysis;

namespace Transport.Framing;

/// <summary>
/// Cuts whole messages out of received bytes. A framer is called by <see cref="MessageReader{TMessage}"/> with
/// everything received and not yet consumed; it never sees a partial read as a whole message and never waits.
/// </summary>
/// <typeparam name="TMessage">The message type, typically a slice of the input (<see cref="ReadOnlySequence{T}"/>).</typeparam>
/// <remarks>
/// <para>
/// Contract: when the <c>input</c> given to <see cref="TryParse"/> starts with a whole message, return
/// <see langword="true"/>, set the message, and move <c>input</c> past it (<c>input = input.Slice(end)</c>).
/// Otherwise return <see langword="false"/> and leave <c>input</c> as it was: the reader then waits for more
/// bytes (all of the current ones count as examined, so it does not spin). The input may be made of many
/// segments; it may end anywhere, even inside a length prefix or a delimiter.
/// </para>
/// <para>
/// Throw <see cref="InvalidFrameException"/> for bytes that can never become a valid message (a length over
/// <see cref="MaxMessageSize"/>, a negative length, a bad header). The reader itself fails with
/// <see cref="InvalidFrameException"/> when more than <see cref="MaxMessageSize"/> bytes are buffered without a
/// whole message, so a framer that cannot tell early (a delimiter that never comes) is still bounded.
/// </para>
/// <para>
/// A message that is a slice of the input stays valid until the reader's next
/// <see cref="MessageReader{TMessage}.WaitToReadAsync"/>; copy what you keep longer. A framer that holds no
/// per-connection state can be shared by every connection; the built-in framers are stateless.
/// </para>
/// </remarks>
public interface IMessageFramer<TMessage>
{
    /// <summary>The largest message, in bytes on the wire including any header, this framer accepts.</summary>
    int MaxMessageSize { get; }

    /// <summary>Parses one message from the start of <paramref name="input"/>, if it holds a whole one.</summary>
    /// <param name="input">The received bytes not yet consumed; on success, moved past the message.</param>
    /// <param name="message">The message, when the method returns <see langword="true"/>.</param>
    /// <returns><see langword="true"/> when a whole message was parsed; <see langword="false"/> when more bytes are needed.</returns>
    /// <exception cref="InvalidFrameException">The input is not a valid frame and never will be.</exception>
    bool TryParse(ref ReadOnlySequence<byte> input, [MaybeNullWhen(false)] out TMessage message);
}

/// <summary>Defaults shared by the built-in framers.</summary>
public static class FramerDefaults
{
    /// <summary>
    /// The default maximum message size: 64 KiB. Keep a framer's maximum below the transport's
    /// <c>MaxReadBufferSize</c> (1 MiB by default): a message larger than the read buffer can never arrive whole.
    /// </summary>
    public const int MaxMessageSize = 64 * 1024;
}

/// <summary>Writes a frame's payload straight into the output's memory.</summary>
/// <typeparam name="TState">Whatever the callback needs, passed without a closure.</typeparam>
/// <param name="destination">Where the payload goes; at least the requested maximum length.</param>
/// <param name="state">The state given to the write call.</param>
/// <returns>How many bytes of <paramref name="destination"/> were written.</returns>
public delegate int FramePayloadWriter<in TState>(Span<byte> destination, TState state);
