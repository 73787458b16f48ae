using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace Transport.Framing;

/// <summary>
/// A <see cref="ConnectionHandler"/> for framed protocols: give it a framer and handle one message at a time.
/// The read loop, partial reads, the maximum message size, batching replies into one flush per read,
/// close requests and the end of input are done here.
/// </summary>
/// <typeparam name="TMessage">The framer's message type.</typeparam>
/// <remarks>
/// <para>
/// Per read, every whole message is handed to <see cref="OnMessageAsync"/> in order; what it writes to
/// <c>connection.Transport.Output</c> is flushed once after the batch (and earlier if more than 64 KiB is
/// pending), so pipelined requests get their replies in one send. On a datagram transport one read is one
/// datagram and one flush sends one datagram, so the replies to a datagram's messages leave as one datagram.
/// </para>
/// <para>
/// The loop ends when the input ends, when the peer stops reading, or when the connection is asked to close
/// (<see cref="IConnectionLifetimeNotificationFeature.RequestClose"/>: the host stopping, or a handler that
/// wants to close after its reply, like a QUIT command): the current message finishes, the replies so far
/// are flushed, and the connection closes.
/// </para>
/// <para>
/// Bad input (<see cref="InvalidFrameException"/>) calls <see cref="OnInvalidFrameAsync"/> so the protocol can
/// send a last error reply, flushes it, and rethrows: the host logs it at Debug as the client's bad input and
/// closes that connection only.
/// </para>
/// </remarks>
public abstract class FramedProtocol<TMessage> : ConnectionHandler
{
    private const int FlushThreshold = 64 * 1024;

    /// <inheritdoc />
    public sealed override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        PipeReader input = connection.Transport.Input;
        PipeWriter output = connection.Transport.Output;
        var reader = new MessageReader<TMessage>(input, CreateFramer(connection));
        CancellationToken closeRequested = connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested ?? default;
        using CancellationTokenRegistration registration = closeRequested.UnsafeRegister(static state => ((PipeReader)state!).CancelPendingRead(), input);
        try
        {
            while (!closeRequested.IsCancellationRequested && await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                while (!closeRequested.IsCancellationRequested && reader.TryRead(out TMessage? message))
                {
                    await OnMessageAsync(connection, message).ConfigureAwait(false);
                    if (output.CanGetUnflushedBytes && output.UnflushedBytes >= FlushThreshold
                        && (await output.FlushAsync().ConfigureAwait(false)).IsCompleted)
                    {
                        return;
                    }
                }

                if ((await output.FlushAsync().ConfigureAwait(false)).IsCompleted)
                {
                    return;
                }
            }
        }
        catch (InvalidFrameException ex)
        {
            await OnInvalidFrameAsync(connection, ex).ConfigureAwait(false);
            await output.FlushAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Returns the framer for a new connection. A stateless framer (all the built-in ones) can be one shared
    /// instance; a framer with per-connection state is created here.
    /// </summary>
    /// <param name="connection">The new connection.</param>
    /// <returns>The framer.</returns>
    protected abstract IMessageFramer<TMessage> CreateFramer(ConnectionContext connection);

    /// <summary>
    /// Handles one message: write the reply, if any, to <c>connection.Transport.Output</c> without flushing.
    /// The message is valid until this returns (and across its awaits).
    /// </summary>
    /// <param name="connection">The connection the message came from.</param>
    /// <param name="message">The message.</param>
    /// <returns>A task that completes when the message is handled.</returns>
    protected abstract ValueTask OnMessageAsync(ConnectionContext connection, TMessage message);

    /// <summary>
    /// Called once when the peer sent invalid framing, before the connection closes: write a last error reply
    /// here if the protocol has one (it is flushed for you). Does nothing by default.
    /// </summary>
    /// <param name="connection">The connection.</param>
    /// <param name="exception">What was wrong; it is rethrown afterwards.</param>
    /// <returns>A task that completes when the reply is written.</returns>
    protected virtual ValueTask OnInvalidFrameAsync(ConnectionContext connection, InvalidFrameException exception) => default;
}
