using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace Transport.Framing;

/// <summary>
/// A <see cref="ConnectionHandler"/> for framed protocols that keep state per connection: give it a framer and a
/// state object, and handle one message at a time. The read loop, partial reads, the maximum message size, batching
/// replies into one flush per read, close requests, the end of input, and messages other connections send to this
/// one through the <see cref="ConnectionRegistry"/> are done here.
/// </summary>
/// <typeparam name="TMessage">The framer's message type.</typeparam>
/// <typeparam name="TState">What the protocol keeps per connection (a session: its user, its subscriptions).</typeparam>
/// <remarks>
/// <para>
/// Lifecycle, per connection: <see cref="CreateState"/>, <see cref="OnConnectionStartedAsync"/> (say hello, join
/// groups), then <see cref="OnMessageAsync"/> for each message, then, when the server asks the connection to close,
/// <see cref="OnCloseRequestedAsync"/> (say goodbye), and last <see cref="OnConnectionEndedAsync"/>, which runs exactly
/// once on every path: the peer closed, the connection was aborted or reset, a hook threw, the input was invalid, or
/// the server shut down. Do the clean-up there (leave groups, unsubscribe, release what the state holds).
/// </para>
/// <para>
/// Per read, every whole message is handed to <see cref="OnMessageAsync"/> in order; what it writes to
/// <c>connection.Transport.Output</c> is flushed once after the batch (and earlier if more than 64 KiB is
/// pending), so pipelined requests get their replies in one send. On a datagram transport one read is one
/// datagram and one flush sends one datagram, so the replies to a datagram's messages leave as one datagram.
/// </para>
/// <para>
/// One writer: while the loop handles a batch (and in the start, close and invalid-frame hooks) it owns the output;
/// messages sent to this connection by others (<see cref="RegisteredConnection.SendAsync"/>, a
/// <see cref="ConnectionGroup"/>, a broadcast) wait in its outbox and are written between two replies, never
/// inside one, and go out in the same flush. While the loop waits for input they are written at once.
/// </para>
/// <para>
/// The loop ends when the input ends, when the peer stops reading, or when the connection is asked to close
/// (<see cref="IConnectionLifetimeNotificationFeature.RequestClose"/>: the host stopping, or a handler that
/// wants to close after its reply, like a QUIT command): the current message finishes, the replies so far
/// are flushed, <see cref="OnCloseRequestedAsync"/> runs, and the connection closes.
/// </para>
/// <para>
/// Bad input (<see cref="InvalidFrameException"/>) calls <see cref="OnInvalidFrameAsync"/> so the protocol can
/// send a last error reply, flushes it, and rethrows: the host logs the exception with the connection id and
/// closes that connection only.
/// </para>
/// </remarks>
public abstract class FramedProtocol<TMessage, TState> : ConnectionHandler
    where TState : class
{
    private const int FlushThreshold = 64 * 1024;

    /// <inheritdoc />
    public sealed override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        TState state = CreateState(connection);
        try
        {
            await RunAsync(connection, state).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            try
            {
                await OnConnectionEndedAsync(connection, state, ex).ConfigureAwait(false);
            }
            catch (Exception hookFailure)
            {
                throw new AggregateException(ex, hookFailure);
            }

            throw;
        }

        await OnConnectionEndedAsync(connection, state, null).ConfigureAwait(false);
    }

    /// <summary>
    /// Returns the framer for a new connection. A stateless framer (all the built-in ones) can be one shared
    /// instance; a framer with per-connection state is created here.
    /// </summary>
    /// <param name="connection">The new connection.</param>
    /// <returns>The framer.</returns>
    protected abstract IMessageFramer<TMessage> CreateFramer(ConnectionContext connection);

    /// <summary>Creates the state of a new connection, before anything else runs for it.</summary>
    /// <param name="connection">The new connection.</param>
    /// <returns>The state, handed to every other hook for this connection.</returns>
    protected abstract TState CreateState(ConnectionContext connection);

    /// <summary>
    /// Called once when the connection starts, before its first message: write a greeting if the protocol has one
    /// (it is flushed for you), join groups, tag the connection. Does nothing by default.
    /// </summary>
    /// <param name="connection">The connection.</param>
    /// <param name="state">Its state.</param>
    /// <returns>A task that completes when the connection is ready for messages.</returns>
    protected virtual ValueTask OnConnectionStartedAsync(ConnectionContext connection, TState state) => default;

    /// <summary>
    /// Handles one message: write the reply, if any, to <c>connection.Transport.Output</c> without flushing.
    /// The message is valid until this returns (and across its awaits).
    /// </summary>
    /// <param name="connection">The connection the message came from.</param>
    /// <param name="state">Its state.</param>
    /// <param name="message">The message.</param>
    /// <returns>A task that completes when the message is handled.</returns>
    protected abstract ValueTask OnMessageAsync(ConnectionContext connection, TState state, TMessage message);

    /// <summary>
    /// Called once when the peer sent invalid framing, before the connection closes: write a last error reply
    /// here if the protocol has one (it is flushed for you). Does nothing by default.
    /// </summary>
    /// <param name="connection">The connection.</param>
    /// <param name="exception">What was wrong; it is rethrown afterwards.</param>
    /// <returns>A task that completes when the reply is written.</returns>
    protected virtual ValueTask OnInvalidFrameAsync(ConnectionContext connection, InvalidFrameException exception) => default;

    /// <summary>
    /// Called once when the connection was asked to close (the host stopping, or
    /// <see cref="IConnectionLifetimeNotificationFeature.RequestClose"/> from a handler), after the current batch:
    /// write a goodbye here if the protocol has one (it is flushed for you). Does nothing by default.
    /// </summary>
    /// <param name="connection">The connection.</param>
    /// <param name="state">Its state.</param>
    /// <returns>A task that completes when the goodbye is written.</returns>
    protected virtual ValueTask OnCloseRequestedAsync(ConnectionContext connection, TState state) => default;

    /// <summary>
    /// Called exactly once per connection, last, on every path: the input ended, the peer reset or the connection was
    /// aborted, a hook threw, the input was invalid, or the server shut down. Release what the state holds here
    /// (leave groups, unsubscribe). The output may no longer be writable. Does nothing by default.
    /// </summary>
    /// <param name="connection">The connection.</param>
    /// <param name="state">Its state.</param>
    /// <param name="failure">Why the connection ended, if not cleanly: it is rethrown afterwards for the host to log.</param>
    /// <returns>A task that completes when the clean-up is done.</returns>
    protected virtual ValueTask OnConnectionEndedAsync(ConnectionContext connection, TState state, Exception? failure) => default;

    private static async ValueTask<bool> FlushIfWrittenAsync(PipeWriter output)
    {
        // An empty flush on a datagram transport would send an empty datagram.
        return (!output.CanGetUnflushedBytes || output.UnflushedBytes > 0) && (await output.FlushAsync().ConfigureAwait(false)).IsCompleted;
    }

    private async Task RunAsync(ConnectionContext connection, TState state)
    {
        CancellationToken closeRequested = connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested ?? default;
        RegisteredConnection? registration = connection.Features.Get<RegisteredConnection>();
        if (registration is not null)
        {
            await registration.AcquireOutputAsync().ConfigureAwait(false);
        }

        try
        {
            await OnConnectionStartedAsync(connection, state).ConfigureAwait(false);
            if (await FlushIfWrittenAsync(connection.Transport.Output).ConfigureAwait(false))
            {
                return;
            }
        }
        finally
        {
            registration?.ReleaseOutput();
        }

        // The start hook may have registered the connection itself (hosted without the Transport engine), or replaced
        // its transport (TLS), so both are read after it.
        registration ??= connection.Features.Get<RegisteredConnection>();
        PipeReader input = connection.Transport.Input;
        PipeWriter output = connection.Transport.Output;
        var reader = new MessageReader<TMessage>(input, CreateFramer(connection));
        using CancellationTokenRegistration cancelRead = closeRequested.UnsafeRegister(static s => ((PipeReader)s!).CancelPendingRead(), input);
        try
        {
            while (!closeRequested.IsCancellationRequested && await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                if (registration is not null)
                {
                    await registration.AcquireOutputAsync().ConfigureAwait(false);
                }

                try
                {
                    while (!closeRequested.IsCancellationRequested && reader.TryRead(out TMessage? message))
                    {
                        // What others sent before this message goes out before its reply.
                        registration?.WriteQueued();
                        await OnMessageAsync(connection, state, message).ConfigureAwait(false);
                        if (output.CanGetUnflushedBytes && output.UnflushedBytes >= FlushThreshold
                            && (await output.FlushAsync().ConfigureAwait(false)).IsCompleted)
                        {
                            return;
                        }
                    }

                    registration?.WriteQueued();
                    if ((await output.FlushAsync().ConfigureAwait(false)).IsCompleted)
                    {
                        return;
                    }
                }
                finally
                {
                    registration?.ReleaseOutput();
                }
            }

            if (closeRequested.IsCancellationRequested)
            {
                await WriteLastAsync(connection, state, registration, output, invalidFrame: null).ConfigureAwait(false);
            }
        }
        catch (InvalidFrameException ex)
        {
            await WriteLastAsync(connection, state, registration, output, ex).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Runs the close-request or invalid-frame hook owning the output, and flushes what it wrote.</summary>
    private async ValueTask WriteLastAsync(ConnectionContext connection, TState state, RegisteredConnection? registration, PipeWriter output,
        InvalidFrameException? invalidFrame)
    {
        if (registration is not null)
        {
            await registration.AcquireOutputAsync().ConfigureAwait(false);
        }

        try
        {
            if (invalidFrame is null)
            {
                await OnCloseRequestedAsync(connection, state).ConfigureAwait(false);
            }
            else
            {
                await OnInvalidFrameAsync(connection, invalidFrame).ConfigureAwait(false);
            }

            registration?.WriteQueued();
            await FlushIfWrittenAsync(output).ConfigureAwait(false);
        }
        finally
        {
            registration?.ReleaseOutput();
        }
    }
}
