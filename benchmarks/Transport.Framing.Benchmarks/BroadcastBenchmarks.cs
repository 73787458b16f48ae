using System.Buffers;
using System.IO.Pipelines;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Connections;

namespace Transport.Framing.Benchmarks;

/// <summary>
/// A send to a <see cref="ConnectionGroup"/> of 100 registered connections over in-memory pipes (no sockets): the
/// copy into each outbox, the drainer that writes it to the connection's output, and a reader per connection that
/// consumes it. Figures are per message sent to the group (100 deliveries); steady state should allocate nothing.
/// </summary>
[MemoryDiagnoser]
public class BroadcastBenchmarks
{
    private const int Members = 100;
    private const int Messages = 100;
    private static readonly byte[] Message = "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$32\r\na 32-byte payload for benchmarks\r\n"u8.ToArray();
    private readonly ConnectionRegistry _registry = new(new ConnectionRegistryOptions { MaxOutboxSize = 64 * 1024 * 1024 });
    private readonly ConnectionGroup _group = new(SlowConsumerPolicy.Drop);
    private readonly List<Pipe> _outputs = [];
    private readonly List<Task> _readers = [];
    private long _received;

    [GlobalSetup]
    public void Setup()
    {
        var options = new PipeOptions(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline, pauseWriterThreshold: 0, useSynchronizationContext: false);
        for (int i = 0; i < Members; i++)
        {
            var input = new Pipe(options);
            var output = new Pipe(options);
            var connection = new DefaultConnectionContext("member-" + i, new DuplexPipe(input.Reader, output.Writer), new DuplexPipe(output.Reader, input.Writer));
            _group.Add(_registry.Register(connection, "bench"));
            _outputs.Add(output);
            _readers.Add(ReadAsync(output.Reader));
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (Pipe output in _outputs)
        {
            output.Writer.Complete();
        }

        Task.WaitAll(_readers);
    }

    [Benchmark(OperationsPerInvoke = Messages)]
    public int SendToGroupOf100()
    {
        long expected = Interlocked.Read(ref _received) + (long)Messages * Members * Message.Length;
        int sent = 0;
        for (int i = 0; i < Messages; i++)
        {
            ValueTask<int> send = _group.SendAsync(Message);
            sent += send.IsCompletedSuccessfully ? send.Result : 0;
        }

        // Wait until every member's reader has the messages, so the drainers' work is inside the measurement.
        SpinWait spin = default;
        while (Interlocked.Read(ref _received) < expected)
        {
            spin.SpinOnce();
        }

        return sent;
    }

    private async Task ReadAsync(PipeReader reader)
    {
        while (true)
        {
            ReadResult result = await reader.ReadAsync().ConfigureAwait(false);
            Interlocked.Add(ref _received, result.Buffer.Length);
            reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return;
            }
        }
    }
}
