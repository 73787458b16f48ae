using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace Transport.Framing;

/// <summary>
/// A <see cref="ConnectionHandler"/> for framed protocols: give it a framer and handle one message at a time.
/// The read loop, partial reads, the maximum message size, batching replies into one flush per read,
/// close requests, the end of input, and messages sent to the connection through the <see cref="ConnectionRegistry"/>
/// are done here. For state per connection, derive from <see cref="FramedProtocol{TMessage, TState}"/> instead.
/// </summary>
/// <typeparam name="TMessage">The framer's message type.</typeparam>
/// <remarks>
/// <para>
/// Per read, every whole message is handed to <see cref="OnMessageAsync(ConnectionContext, TMessage)"/> in order; what
/// it writes to <c>connection.Transport.Output</c> is flushed once after the batch (and earlier if more than 64 KiB is
/// pending), so pipelined requests get their replies in one send. On a datagram transport one read is one
/// datagram and one flush sends one datagram, so the replies to a datagram's messages leave as one datagram.
/// </para>
/// <para>
/// The loop ends when the input ends, when the peer stops reading, or when the connection is asked to close
/// (<see cref="IConnectionLifetimeNotificationFeature.RequestClose"/>: the host stopping, or a handler that
/// wants to close after its reply, like a QUIT command): the current message finishes, the replies so far
/// are flushed, <see cref="OnCloseRequestedAsync(ConnectionContext)"/> may say goodbye, and the connection closes;
/// <see cref="OnConnectionEndedAsync(ConnectionContext, Exception)"/> runs last on every path.
/// </para>
/// <para>
/// Bad input (<see cref="InvalidFrameException"/>) calls <c>OnInvalidFrameAsync</c> so the protocol can
/// send a last error reply, flushes it, and rethrows: the host logs it at Debug as the client's bad input and
/// closes that connection only.
/// </para>
/// </remarks>
public abstract class FramedProtocol<TMessage> : FramedProtocol<TMessage, object>
{
    private static readonly object NoState = new();

    /// <summary>
    /// Handles one message: write the reply, if any, to <c>connection.Transport.Output</c> without flushing.
    /// The message is valid until this returns (and across its awaits).
    /// </summary>
    /// <param name="connection">The connection the message came from.</param>
    /// <param name="message">The message.</param>
    /// <returns>A task that completes when the message is handled.</returns>
    protected abstract ValueTask OnMessageAsync(ConnectionContext connection, TMessage message);

    /// <summary>
    /// Called once when the connection starts, before its first message: write a greeting if the protocol has one
    /// (it is flushed for you). Does nothing by default.
    /// </summary>
    /// <param name="connection">The connection.</param>
    /// <returns>A task that completes when the connection is ready for messages.</returns>
    protected virtual ValueTask OnConnectionStartedAsync(ConnectionContext connection) => default;

    /// <summary>
    /// Called once when the connection was asked to close, after the current batch: write a goodbye here if the
    /// protocol has one (it is flushed for you). Does nothing by default.
    /// </summary>
    /// <param name="connection">The connection.</param>
    /// <returns>A task that completes when the goodbye is written.</returns>
    protected virtual ValueTask OnCloseRequestedAsync(ConnectionContext connection) => default;

    /// <summary>
    /// Called exactly once per connection, last, on every path (see <see cref="FramedProtocol{TMessage, TState}"/>).
    /// Does nothing by default.
    /// </summary>
    /// <param name="connection">The connection.</param>
    /// <param name="failure">Why the connection ended, if not cleanly: it is rethrown afterwards for the host to log.</param>
    /// <returns>A task that completes when the clean-up is done.</returns>
    protected virtual ValueTask OnConnectionEndedAsync(ConnectionContext connection, Exception? failure) => default;

    /// <inheritdoc />
    protected sealed override object CreateState(ConnectionContext connection) => NoState;

    /// <inheritdoc />
    protected sealed override ValueTask OnMessageAsync(ConnectionContext connection, object state, TMessage message) =>
        OnMessageAsync(connection, message);

    /// <inheritdoc />
    protected sealed override ValueTask OnConnectionStartedAsync(ConnectionContext connection, object state) =>
        OnConnectionStartedAsync(connection);

    /// <inheritdoc />
    protected sealed override ValueTask OnCloseRequestedAsync(ConnectionContext connection, object state) =>
        OnCloseRequestedAsync(connection);

    /// <inheritdoc />
    protected sealed override ValueTask OnConnectionEndedAsync(ConnectionContext connection, object state, Exception? failure) =>
        OnConnectionEndedAsync(connection, failure);
}
