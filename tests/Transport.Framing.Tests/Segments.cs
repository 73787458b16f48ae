using System.Buffers;

namespace Transport.Framing.Tests;

/// <summary>Builds multi-segment sequences, the shape a pipe hands out when bytes arrive in pieces.</summary>
internal static class Segments
{
    public static ReadOnlySequence<byte> Of(params byte[][] chunks)
    {
        if (chunks.Length == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        var first = new Segment(chunks[0], 0);
        Segment last = first;
        for (int i = 1; i < chunks.Length; i++)
        {
            last = last.Append(chunks[i]);
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    /// <summary>One segment per byte.</summary>
    public static ReadOnlySequence<byte> ByteAtATime(byte[] bytes) => Of(bytes.Select(b => new[] { b }).ToArray());

    /// <summary>Cut at random points into 1..maxChunk byte chunks.</summary>
    public static byte[][] RandomChunks(byte[] bytes, Random random, int maxChunk)
    {
        var chunks = new List<byte[]>();
        for (int offset = 0; offset < bytes.Length;)
        {
            int size = Math.Min(bytes.Length - offset, random.Next(1, maxChunk + 1));
            chunks.Add(bytes[offset..(offset + size)]);
            offset += size;
        }

        return [.. chunks];
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
