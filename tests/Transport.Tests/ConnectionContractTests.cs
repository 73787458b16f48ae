using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Transport.Tests;

/// <summary>
/// What code we did not write may do with our connections, as the contract allows (Kestrel's HTTP stack does both):
/// abort without a reason, and register callbacks on the close tokens that throw. Every transport, both sides.
/// </summary>
public sealed class ConnectionContractTests
{
    public static IEnumerable<object[]> AllTransports => TestTransports.All;

    [Theory]
    [MemberData(nameof(AllTransports))]
    public async Task AbortWithNullReason_OnTheServerSide_EndsTheConnectionWithoutAnError(TestTransport transport)
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<AbortWithoutReasonProtocol>(transport);
        var protocol = server.Services.GetRequiredService<AbortWithoutReasonProtocol>();
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync("x"u8.ToArray());

        Exception? serverInputEnd = await protocol.InputEnded.Task.DefaultTimeout();
        Assert.True(serverInputEnd is null or ConnectionAbortedException, "the aborted side's input ended with " + serverInputEnd);
        if (!transport.IsDatagram())
        {
            Exception? clientInputEnd = await ReadUntilEndedAsync(client.Transport.Input);
            if (transport == TestTransport.Memory)
            {
                // Documented for the memory transport: the peer of an aborted connection sees a reset.
                Assert.IsType<ConnectionResetException>(clientInputEnd);
            }
        }

        await server.StopAsync();
        Assert.Empty(server.Logs.At(LogLevel.Error));
    }

    [Theory]
    [MemberData(nameof(AllTransports))]
    public async Task AbortWithNullReason_OnTheClientSide_EndsItsInput(TestTransport transport)
    {
        await using TransportTestServer server = await EchoServer.StartAsync(transport);
        ConnectionContext client = await server.ConnectAsync();
        await client.SendAsync("x"u8.ToArray());
        Assert.Equal("x"u8.ToArray(), await client.ReceiveExactlyAsync(1));

        client.Abort(null!);

        Exception? end = await ReadUntilEndedAsync(client.Transport.Input);
        Assert.True(end is null or ConnectionAbortedException, "the aborted side's input ended with " + end);
        await client.DisposeAsync().DefaultTimeout();
        Assert.Empty(server.Logs.At(LogLevel.Error));
    }

    public static IEnumerable<object[]> StreamTransports => TestTransports.Streams;

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task AfterAbort_AWriteThrowsTheAbortReason_NotAQuietCompletedFlush(TestTransport transport)
    {
        await using TransportTestServer server = await EchoServer.StartAsync(transport);
        ConnectionContext client = await server.ConnectAsync();
        await client.SendAsync("x"u8.ToArray());
        Assert.Equal("x"u8.ToArray(), await client.ReceiveExactlyAsync(1));
        var reason = new ConnectionAbortedException("aborted by the test");

        client.Abort(reason);
        await ReadUntilEndedAsync(client.Transport.Input);

        // A protocol that writes after an abort learns why, as on Kestrel's transport: a completed FlushResult would
        // look like a peer that merely stopped reading.
        ConnectionAbortedException thrown = await Assert.ThrowsAsync<ConnectionAbortedException>(async () =>
        {
            for (int i = 0; i < 2; i++)
            {
                await client.Transport.Output.WriteAsync("y"u8.ToArray());
            }
        }).DefaultTimeout();
        Assert.Equal(reason.Message, thrown.Message);
        await client.DisposeAsync().DefaultTimeout();
    }

    [Theory]
    [MemberData(nameof(AllTransports))]
    public async Task ThrowingConnectionClosedCallback_IsLoggedWithTheConnection_AndTheServerCarriesOn(TestTransport transport)
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<ThrowOnClosedProtocol>(transport);
        var protocol = server.Services.GetRequiredService<ThrowOnClosedProtocol>();

        await using (ConnectionContext first = await server.ConnectAsync())
        {
            await first.SendAsync("1"u8.ToArray());
            Assert.Equal("1"u8.ToArray(), await first.ReceiveExactlyAsync(1));
            await first.SendAsync("!"u8.ToArray());
        }

        // The protocol aborted its side on the second message, so ConnectionClosed fired and its callback threw.
        TestLogEntry logged = await WaitForLoggedAsync(server.Logs, protocol.Failure);
        Assert.Equal(LogLevel.Error, logged.Level);
        Assert.Contains(nameof(ConnectionContext.ConnectionClosed), logged.Message, StringComparison.Ordinal);

        // Still serving.
        await using ConnectionContext second = await server.ConnectAsync();
        await second.SendAsync("2"u8.ToArray());
        Assert.Equal("2"u8.ToArray(), await second.ReceiveExactlyAsync(1));
    }

    [Theory]
    [MemberData(nameof(AllTransports))]
    public async Task ThrowingConnectionClosedCallback_OnAClientConnection_IsLogged(TestTransport transport)
    {
        await using TransportTestServer server = await EchoServer.StartAsync(transport);
        ConnectionContext client = await server.ConnectAsync();
        var failure = new InvalidOperationException("A client's ConnectionClosed callback failed on purpose.");
        client.ConnectionClosed.Register(() => throw failure);
        await client.SendAsync("x"u8.ToArray());
        Assert.Equal("x"u8.ToArray(), await client.ReceiveExactlyAsync(1));

        client.Abort();

        TestLogEntry logged = await WaitForLoggedAsync(server.Logs, failure);
        Assert.Equal(LogLevel.Error, logged.Level);
        await client.DisposeAsync().DefaultTimeout();
    }

    [Theory]
    [MemberData(nameof(AllTransports))]
    public async Task ThrowingCloseRequestedCallback_IsLogged_OtherCallbacksRun_AndShutdownCompletes(TestTransport transport)
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<ThrowOnCloseRequestedProtocol>(transport);
        var protocol = server.Services.GetRequiredService<ThrowOnCloseRequestedProtocol>();
        await using ConnectionContext client = await server.ConnectAsync();
        await client.SendAsync("x"u8.ToArray());
        await protocol.Serving.Task.DefaultTimeout();

        await server.StopAsync();

        // The protocol's own close-request callback ran too and let it finish before the deadline.
        Assert.True(protocol.CloseRequested.Task.IsCompletedSuccessfully);
        Assert.DoesNotContain(server.Logs.Entries, e => e.Message.Contains("Shutdown deadline reached", StringComparison.Ordinal));
        TestLogEntry logged = await WaitForLoggedAsync(server.Logs, protocol.Failure);
        Assert.Equal(LogLevel.Error, logged.Level);
        Assert.Contains(nameof(IConnectionLifetimeNotificationFeature.ConnectionClosedRequested), logged.Message, StringComparison.Ordinal);
    }

    private static async Task<TestLogEntry> WaitForLoggedAsync(TestLoggerProvider logs, Exception failure)
    {
        // In the category of whichever transport owns the connection; the test's callback is the only one that throws.
        await logs.WaitForEventAsync(LogEvents.CallbackFailed);
        return Assert.Single(logs.Entries, e => ReferenceEquals(e.Exception, failure));
    }

    /// <summary>Reads and discards until the input ends; returns the exception it ended with, if any.</summary>
    private static async Task<Exception?> ReadUntilEndedAsync(PipeReader input)
    {
        try
        {
            while (true)
            {
                ReadResult result = await input.ReadAsync().DefaultTimeout();
                input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    return null;
                }
            }
        }
        catch (Exception ex) when (ex is not TimeoutException)
        {
            return ex;
        }
    }

    private sealed class AbortWithoutReasonProtocol : ConnectionHandler
    {
        public TaskCompletionSource<Exception?> InputEnded { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            // The first bytes: on UDP they are what opened the session.
            ReadResult first = await connection.Transport.Input.ReadAsync();
            connection.Transport.Input.AdvanceTo(first.Buffer.End);

            // Kestrel's HTTP/1.1 stack aborts like this when the peer's side ends; its own transport accepts it.
            connection.Abort(null!);

            InputEnded.TrySetResult(await ReadUntilEndedAsync(connection.Transport.Input));
        }
    }

    private sealed class ThrowOnClosedProtocol : ConnectionHandler
    {
        public InvalidOperationException Failure { get; } = new("A ConnectionClosed callback failed on purpose.");

        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            connection.ConnectionClosed.Register(static state => throw (Exception)state!, Failure);
            PipeReader input = connection.Transport.Input;
            ReadResult result = await input.ReadAsync();
            await connection.Transport.Output.WriteAsync(result.Buffer.Slice(0, 1).First);

            // The second byte says the client has its echo: an abort now loses nothing it waits for.
            bool secondArrived = result.Buffer.Length > 1;
            input.AdvanceTo(result.Buffer.End);
            while (!secondArrived)
            {
                result = await input.ReadAsync();
                secondArrived = !result.Buffer.IsEmpty || result.IsCompleted;
                input.AdvanceTo(result.Buffer.End);
            }

            connection.Abort();
            await ReadUntilEndedAsync(connection.Transport.Input);
        }
    }

    private sealed class ThrowOnCloseRequestedProtocol : ConnectionHandler
    {
        public InvalidOperationException Failure { get; } = new("A ConnectionClosedRequested callback failed on purpose.");

        public TaskCompletionSource Serving { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource CloseRequested { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            CancellationToken closeRequested = connection.Features.Get<IConnectionLifetimeNotificationFeature>()!.ConnectionClosedRequested;
            closeRequested.Register(static state => throw (Exception)state!, Failure);
            closeRequested.Register(static state => ((TaskCompletionSource)state!).TrySetResult(), CloseRequested);
            ReadResult first = await connection.Transport.Input.ReadAsync();
            connection.Transport.Input.AdvanceTo(first.Buffer.End);
            Serving.TrySetResult();
            await CloseRequested.Task;
        }
    }
}
