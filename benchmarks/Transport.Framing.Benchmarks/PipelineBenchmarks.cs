using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Connections;
using Transport.Framing;
using Transport.Protocols.KeyValue;

namespace Transport.Framing.Benchmarks;

/// <summary>
/// The whole path minus the socket: a batch of 100 messages written into a pipe, read by
/// <see cref="MessageReader{TMessage}"/> (or the KeyValue protocol running on a connection over in-memory pipes),
/// and the replies read back. Figures are per message; steady state should allocate nothing but the store's SET copies.
/// </summary>
[MemoryDiagnoser]
public class PipelineBenchmarks
{
    private const int Messages = 100;
    private static readonly LengthPrefixedFramer Framer = new(4);
    private readonly Pipe _pipe = new(new PipeOptions(pauseWriterThreshold: 0, useSynchronizationContext: false));
    private byte[] _frames = [];
    private MessageReader<ReadOnlySequence<byte>> _reader = null!;

    private Pipe _requests = null!;
    private Pipe _replies = null!;
    private KeyValueProtocol _protocol = null!;
    private Task _connection = Task.CompletedTask;
    private byte[] _gets = [];
    private byte[] _sets = [];
    private int _getReplyBytes;

    [GlobalSetup]
    public void Setup()
    {
        var output = new ArrayBufferWriter<byte>();
        for (int i = 0; i < Messages; i++)
        {
            Framer.Write(output, "a 32-byte payload for benchmarks"u8);
        }

        _frames = output.WrittenSpan.ToArray();
        _reader = new MessageReader<ReadOnlySequence<byte>>(_pipe.Reader, Framer);

        var inline = new PipeOptions(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline, pauseWriterThreshold: 0, useSynchronizationContext: false);
        _requests = new Pipe(inline);
        _replies = new Pipe(inline);
        _protocol = new KeyValueProtocol();
        var connection = new DefaultConnectionContext("bench", new DuplexPipe(_requests.Reader, _replies.Writer), new DuplexPipe(_replies.Reader, _requests.Writer));
        _connection = _protocol.OnConnectedAsync(connection);
        _sets = Repeat("*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nxxx\r\n");
        _gets = Repeat("*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n");
        RoundTrip(_sets, 5 * Messages).GetAwaiter().GetResult();
        _getReplyBytes = "$3\r\nxxx\r\n".Length * Messages;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _requests.Writer.Complete();
        _connection.GetAwaiter().GetResult();
        _protocol.Dispose();
    }

    [Benchmark(OperationsPerInvoke = Messages)]
    public async ValueTask<long> MessageReader_LengthPrefixed()
    {
        await _pipe.Writer.WriteAsync(_frames);
        long total = 0;
        int seen = 0;
        while (seen < Messages && await _reader.WaitToReadAsync())
        {
            while (_reader.TryRead(out ReadOnlySequence<byte> message))
            {
                total += message.Length;
                seen++;
            }
        }

        return total;
    }

    [Benchmark(OperationsPerInvoke = Messages)]
    public Task KeyValue_PipelinedGet() => RoundTrip(_gets, _getReplyBytes);

    [Benchmark(OperationsPerInvoke = Messages)]
    public Task KeyValue_PipelinedSet() => RoundTrip(_sets, 5 * Messages);

    private async Task RoundTrip(byte[] requests, int replyBytes)
    {
        await _requests.Writer.WriteAsync(requests);
        int received = 0;
        while (received < replyBytes)
        {
            ReadResult result = await _replies.Reader.ReadAsync();
            received += (int)result.Buffer.Length;
            _replies.Reader.AdvanceTo(result.Buffer.End);
        }
    }

    private static byte[] Repeat(string command) => Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat(command, Messages)));
}
