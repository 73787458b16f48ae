using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Transport.Sockets;

namespace Transport.Tests;

/// <summary>
/// Abort while the socket transport's receive loop waits in a receive: the protocol's read ends with the abort reason,
/// never as a clean end of input (closing the socket can complete that receive with 0 bytes, which looks like a FIN).
/// </summary>
public sealed class SocketAbortTests
{
    public static TheoryData<TestTransport, bool, bool> Cases => new()
    {
        { TestTransport.Tcp, false, true },
        { TestTransport.Tcp, true, true },
        { TestTransport.Unix, false, true },
        { TestTransport.Unix, true, true },
        { TestTransport.Tcp, true, false },
        { TestTransport.Unix, true, false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task AbortDuringAPendingReceive_ProtocolReadEndsWithTheAbortReason(TestTransport transport, bool waitForData, bool ioThreads)
    {
        var reads = new ReadRecorder();
        await using TransportTestServer server = await TransportTestServer.StartAsync<ReadTwiceProtocol>(transport, b =>
        {
            b.Host.Services.AddSingleton(reads);
            b.Host.Services.Configure<SocketTransportOptions>(o =>
            {
                o.WaitForDataBeforeAllocatingBuffer = waitForData;
                o.PreferTransportIoThreads = ioThreads;
            });
        });

        // Many rounds: how a closed socket completes the pending receive (an error, or 0 bytes) is a race.
        for (int round = 0; round < 500; round++)
        {
            await using ConnectionContext client = await server.ConnectAsync();
            await client.SendAsync("x"u8.ToArray());
            ConnectionContext connection = await reads.FirstRead.Task.DefaultTimeout();
            reads.Reset();

            connection.Abort(new ConnectionAbortedException("The test aborted the connection."));
            Exception? ended = await reads.Ended.Task.DefaultTimeout();

            Assert.Equal("The test aborted the connection.", Assert.IsType<ConnectionAbortedException>(ended).Message);
            reads.ResetEnded();
        }
    }

    private sealed class ReadRecorder
    {
        public TaskCompletionSource<ConnectionContext> FirstRead { get; private set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource<Exception?> Ended { get; private set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Reset() => FirstRead = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void ResetEnded() => Ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Reads the first bytes, then waits in a second read and records how it ends.</summary>
    private sealed class ReadTwiceProtocol(ReadRecorder reads) : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            System.IO.Pipelines.ReadResult first = await connection.Transport.Input.ReadAsync();
            connection.Transport.Input.AdvanceTo(first.Buffer.End);
            TaskCompletionSource<Exception?> ended = reads.Ended;
            reads.FirstRead.TrySetResult(connection);
            try
            {
                while (true)
                {
                    System.IO.Pipelines.ReadResult next = await connection.Transport.Input.ReadAsync();
                    connection.Transport.Input.AdvanceTo(next.Buffer.End);
                    if (next.IsCompleted)
                    {
                        ended.TrySetResult(null);
                        return;
                    }
                }
            }
            catch (Exception ex)
            {
                ended.TrySetResult(ex);
            }
        }
    }
}
