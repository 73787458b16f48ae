namespace Transport.Protocols.KeyValue.Internal;

/// <summary>
/// Redis's glob patterns (PSUBSCRIBE, PUBSUB CHANNELS): <c>*</c> any run of bytes, <c>?</c> one byte, <c>[abc]</c>,
/// <c>[^abc]</c> and <c>[a-z]</c> a byte in (or not in) a set, <c>\x</c> the byte x itself. Case-sensitive, bytes not
/// characters, as in Redis.
/// </summary>
internal static class GlobPattern
{
    public static bool IsMatch(ReadOnlySpan<byte> pattern, ReadOnlySpan<byte> text)
    {
        // Every token but '*' matches exactly one byte, so backtracking to the last '*' alone is enough.
        int p = 0;
        int t = 0;
        int star = -1;
        int starText = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && pattern[p] == (byte)'*')
            {
                star = p++;
                starText = t;
                continue;
            }

            if (p < pattern.Length && MatchesOne(pattern, p, text[t], out int next))
            {
                p = next;
                t++;
                continue;
            }

            if (star < 0)
            {
                return false;
            }

            p = star + 1;
            t = ++starText;
        }

        while (p < pattern.Length && pattern[p] == (byte)'*')
        {
            p++;
        }

        return p == pattern.Length;
    }

    /// <summary>Whether the token at <paramref name="p"/> matches <paramref name="b"/>; <paramref name="next"/> is the token after it.</summary>
    private static bool MatchesOne(ReadOnlySpan<byte> pattern, int p, byte b, out int next)
    {
        switch (pattern[p])
        {
            case (byte)'?':
                next = p + 1;
                return true;
            case (byte)'\\' when p + 1 < pattern.Length:
                next = p + 2;
                return pattern[p + 1] == b;
            case (byte)'[':
                return MatchesSet(pattern, p + 1, b, out next);
            default:
                next = p + 1;
                return pattern[p] == b;
        }
    }

    private static bool MatchesSet(ReadOnlySpan<byte> pattern, int p, byte b, out int next)
    {
        bool negate = p < pattern.Length && pattern[p] == (byte)'^';
        if (negate)
        {
            p++;
        }

        bool match = false;
        while (p < pattern.Length && pattern[p] != (byte)']')
        {
            if (pattern[p] == (byte)'\\' && p + 1 < pattern.Length)
            {
                match |= pattern[++p] == b;
            }
            else if (p + 2 < pattern.Length && pattern[p + 1] == (byte)'-')
            {
                byte start = pattern[p];
                byte end = pattern[p + 2];
                if (start > end)
                {
                    (start, end) = (end, start);
                }

                match |= b >= start && b <= end;
                p += 2;
            }
            else
            {
                match |= pattern[p] == b;
            }

            p++;
        }

        // An unterminated set ends with the pattern, as in Redis.
        next = Math.Min(p + 1, pattern.Length);
        return match != negate;
    }
}
