using System.Buffers;
using Transport.Framing.Tests;

namespace Transport.Fuzz;

/// <summary>
/// The fuzzer's bytes, read as a few choice bytes (which framer, which limits, where to cut) followed by the data.
/// Reading past the end gives zeros, so every input, however short, is a valid test case.
/// </summary>
internal ref struct FuzzInput(ReadOnlySpan<byte> bytes)
{
    private ReadOnlySpan<byte> _rest = bytes;

    public byte Choice()
    {
        if (_rest.IsEmpty)
        {
            return 0;
        }

        byte value = _rest[0];
        _rest = _rest[1..];
        return value;
    }

    public ReadOnlySpan<byte> Take(int count)
    {
        ReadOnlySpan<byte> taken = _rest[..Math.Min(count, _rest.Length)];
        _rest = _rest[taken.Length..];
        return taken;
    }

    public readonly ReadOnlySpan<byte> Rest => _rest;
}

/// <summary>
/// Cuts data into receive segments at points chosen by one input byte, the shapes a pipe hands a parser when
/// bytes arrive in pieces: 0 keeps one segment; otherwise a small generator seeded by the byte picks chunk sizes up
/// to a limit the byte also picks, now and then with an empty segment in between.
/// </summary>
internal static class Chunks
{
    private static readonly int[] Limits = [1, 2, 3, 5, 8, 16, 64, 512];

    public static int[] Cut(int length, byte seed)
    {
        if (seed == 0 || length == 0)
        {
            return [length];
        }

        var sizes = new List<int>();
        int limit = Limits[seed & 7];
        uint state = seed * 2654435761u;
        for (int left = length; left > 0;)
        {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            if ((state & 0x1F) == 0)
            {
                sizes.Add(0);
            }

            int size = Math.Min(left, 1 + (int)((state >> 8) % (uint)limit));
            sizes.Add(size);
            left -= size;
        }

        return [.. sizes];
    }

    /// <summary>The data as one sequence with a segment per chunk.</summary>
    public static ReadOnlySequence<byte> ToSequence(ReadOnlyMemory<byte> data, int[] sizes)
    {
        var chunks = new byte[sizes.Length][];
        int offset = 0;
        for (int i = 0; i < sizes.Length; i++)
        {
            chunks[i] = data.Slice(offset, sizes[i]).ToArray();
            offset += sizes[i];
        }

        return Segments.Of(chunks);
    }

    /// <summary>
    /// A position's distance from the buffer's start (GetOffset counts from the backing memory's start), and a
    /// check that the position lies inside the buffer at all: Slice throws for one that does not.
    /// </summary>
    public static long Offset(in ReadOnlySequence<byte> buffer, SequencePosition position) => buffer.Slice(buffer.Start, position).Length;
}

/// <summary>A broken invariant: the fuzzer reports it as a crash, the replay test as a failure.</summary>
internal sealed class FuzzInvariantException(string message) : Exception(message);

internal static class Check
{
    public static void That(bool condition, string what)
    {
        if (!condition)
        {
            throw new FuzzInvariantException(what);
        }
    }
}
