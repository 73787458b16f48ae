using System.Buffers;
using System.Text;

namespace Transport.Protocols.Greeting.Internal;

/// <summary>What the server needs to know of a request head.</summary>
internal struct RequestHead
{
    public RequestMethod Method;
    public bool IsRoot;
    public bool IsHttp11;
    public bool ConnectionClose;
    public bool ConnectionKeepAlive;
    public long ContentLength;
    public bool HasTransferEncoding;
    public int HostCount;
}

internal enum RequestMethod : byte
{
    Get,
    Head,
    OtherKnown,
    Unknown,
}

/// <summary>
/// An incremental HTTP/1.x request-head parser. <see cref="FindHeadEnd"/> is called with everything buffered
/// so far and scans only the bytes it has not seen (no rescans when a request trickles in a byte at a time),
/// enforcing the line, count and size limits as it goes; <see cref="Parse"/> then reads the complete head.
/// Accepts CRLF or a bare LF as line end (RFC 9112 §2.2); rejects obsolete line folding, whitespace before
/// the colon and control characters with 400.
/// The request line is judged without waiting for the head: in full as soon as its line end arrives (400 or
/// 505), and before that as soon as its bytes so far cannot begin any valid request line (400), as nginx does.
/// </summary>
internal sealed class HttpRequestParser(GreetingOptions limits)
{
    private const int StackLineLimit = 512;

    private long _scanned;
    private int _lines;
    private long _requestLineEnd;

    // The request line before its line end, checked incrementally: where it starts, how far it was checked,
    // which part the check is in (spaces seen: method, target, version), that part's length, and a CR seen last.
    private long _prefixStart = -1;
    private long _prefixChecked;
    private int _prefixSpaces;
    private int _prefixPartLength;
    private bool _prefixCr;

    public void Reset()
    {
        _scanned = 0;
        _lines = 0;
        _requestLineEnd = 0;
        _prefixStart = -1;
    }

    /// <summary>
    /// Looks for the blank line that ends the head. Returns null while it has not arrived (and no limit is
    /// broken), <see cref="HttpStatus.Ok"/> with <paramref name="headEnd"/> when it has, or the error status.
    /// </summary>
    public HttpStatus? FindHeadEnd(in ReadOnlySequence<byte> buffer, out SequencePosition headEnd, out string? reason)
    {
        headEnd = default;
        reason = null;
        var reader = new SequenceReader<byte>(buffer);
        reader.Advance(_scanned);
        while (true)
        {
            long lineStart = reader.Consumed;
            if (!reader.TryAdvanceTo((byte)'\n'))
            {
                // One byte over is allowed here: it may be the CR of a CRLF whose LF is still on its way, which a
                // complete line does not count; the verdict must not depend on where a read ends.
                long partial = buffer.Length - lineStart;
                if (_lines == 0 && !IsRequestLinePrefix(buffer, lineStart, out reason))
                {
                    return HttpStatus.BadRequest;
                }

                if (_lines == 0 && partial > limits.MaxRequestLineLength + 1L)
                {
                    reason = $"request line longer than {limits.MaxRequestLineLength} bytes";
                    return HttpStatus.UriTooLong;
                }

                if (_lines > 0 && buffer.Length - _requestLineEnd > limits.MaxRequestHeadersTotalSize + 1L)
                {
                    reason = $"header section larger than {limits.MaxRequestHeadersTotalSize} bytes";
                    return HttpStatus.HeaderFieldsTooLarge;
                }

                return null;
            }

            long length = reader.Consumed - lineStart - 1;
            if (length > 0 && EndsWithCr(buffer, reader.Consumed - 2))
            {
                length--;
            }

            _scanned = reader.Consumed;
            if (_lines == 0)
            {
                if (length == 0)
                {
                    // RFC 9112 §2.2: empty lines before the request line are ignored, but they stay buffered
                    // until the head ends, so they count against the request line's limit.
                    if (reader.Consumed > limits.MaxRequestLineLength)
                    {
                        reason = $"more than {limits.MaxRequestLineLength} bytes of empty lines before the request line";
                        return HttpStatus.BadRequest;
                    }

                    continue;
                }

                if (length > limits.MaxRequestLineLength)
                {
                    // As in chunks: a byte within the limit that no request line can have is judged first.
                    if (!IsRequestLinePrefix(buffer.Slice(0, lineStart + length), lineStart, out reason))
                    {
                        return HttpStatus.BadRequest;
                    }

                    reason = $"request line longer than {limits.MaxRequestLineLength} bytes";
                    return HttpStatus.UriTooLong;
                }

                _lines = 1;
                _requestLineEnd = reader.Consumed;
                RequestHead scratch = default;
                HttpStatus lineStatus = WithSpan(buffer.Slice(lineStart, length), ref scratch, requestLine: true, out reason);
                if (lineStatus != HttpStatus.Ok)
                {
                    return lineStatus;
                }

                continue;
            }

            if (length == 0)
            {
                headEnd = reader.Position;
                return HttpStatus.Ok;
            }

            if (reader.Consumed - _requestLineEnd > limits.MaxRequestHeadersTotalSize)
            {
                reason = $"header section larger than {limits.MaxRequestHeadersTotalSize} bytes";
                return HttpStatus.HeaderFieldsTooLarge;
            }

            if (_lines++ > limits.MaxRequestHeaderCount)
            {
                reason = $"more than {limits.MaxRequestHeaderCount} header fields";
                return HttpStatus.HeaderFieldsTooLarge;
            }
        }
    }

    /// <summary>
    /// Checks the bytes of a request line that has no line end yet, from where the previous call stopped: false,
    /// with the reason, once no continuation can make it a valid request line (the rules of
    /// <see cref="ParseRequestLine"/>: a token method, one space, a target without controls, one space, HTTP/d.d).
    /// </summary>
    private bool IsRequestLinePrefix(in ReadOnlySequence<byte> buffer, long lineStart, out string? reason)
    {
        if (_prefixStart != lineStart)
        {
            _prefixStart = lineStart;
            _prefixChecked = lineStart;
            _prefixSpaces = 0;
            _prefixPartLength = 0;
            _prefixCr = false;
        }

        // Only the bytes a request line may have are judged: beyond the length limit the verdict is 414, wherever
        // the reads happen to end.
        long end = Math.Min(buffer.Length, lineStart + limits.MaxRequestLineLength + 1L);
        foreach (ReadOnlyMemory<byte> segment in buffer.Slice(_prefixChecked, Math.Max(0, end - _prefixChecked)))
        {
            foreach (byte b in segment.Span)
            {
                reason = CheckPrefixByte(b);
                if (reason is not null)
                {
                    return false;
                }
            }
        }

        _prefixChecked = Math.Max(_prefixChecked, end);
        reason = null;
        return true;
    }

    /// <summary>The next byte of a request line without its line end: null while it can still be valid, else why not.</summary>
    private string? CheckPrefixByte(byte b)
    {
        if (_prefixCr)
        {
            return "a CR inside the request line";
        }

        if (b == '\r')
        {
            // Only valid as the start of the CRLF, which the next byte shows.
            _prefixCr = true;
            return null;
        }

        switch (_prefixSpaces)
        {
            case 0:
                if (b == ' ')
                {
                    if (_prefixPartLength == 0)
                    {
                        return "whitespace before the method";
                    }

                    _prefixSpaces = 1;
                    _prefixPartLength = 0;
                    return null;
                }

                if (!IsTokenChar(b))
                {
                    return "malformed method";
                }

                break;
            case 1:
                if (b == ' ')
                {
                    if (_prefixPartLength == 0)
                    {
                        return "empty request target";
                    }

                    _prefixSpaces = 2;
                    _prefixPartLength = 0;
                    return null;
                }

                if (b < 0x20 || b == 0x7F)
                {
                    return "control character in the request target";
                }

                break;
            default:
                bool fits = _prefixPartLength switch
                {
                    < 5 => b == "HTTP/"u8[_prefixPartLength],
                    5 or 7 => char.IsAsciiDigit((char)b),
                    6 => b == '.',
                    _ => false,
                };
                if (!fits)
                {
                    return "malformed HTTP version";
                }

                break;
        }

        _prefixPartLength++;
        return null;
    }

    /// <summary>Parses a complete head (as delimited by <see cref="FindHeadEnd"/>).</summary>
    public static HttpStatus Parse(ReadOnlySequence<byte> head, out RequestHead request, out string? reason)
    {
        request = default;
        request.ContentLength = -1;
        var reader = new SequenceReader<byte>(head);
        bool requestLine = true;
        while (reader.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\n'))
        {
            if (line.Length > 0 && EndsWithCr(line, line.Length - 1))
            {
                line = line.Slice(0, line.Length - 1);
            }

            if (line.Length == 0)
            {
                if (requestLine)
                {
                    continue;
                }

                break;
            }

            HttpStatus status = WithSpan(line, ref request, requestLine, out reason);
            if (status != HttpStatus.Ok)
            {
                return status;
            }

            requestLine = false;
        }

        if (request.HostCount > 1 || (request.IsHttp11 && request.HostCount == 0))
        {
            reason = request.HostCount > 1 ? "more than one Host header" : "an HTTP/1.1 request without a Host header";
            return HttpStatus.BadRequest;
        }

        reason = null;
        return HttpStatus.Ok;
    }

    private static HttpStatus WithSpan(in ReadOnlySequence<byte> line, ref RequestHead request, bool requestLine, out string? reason)
    {
        if (line.IsSingleSegment)
        {
            return ParseLine(line.FirstSpan, ref request, requestLine, out reason);
        }

        int length = (int)line.Length;
        byte[]? rented = length > StackLineLimit ? ArrayPool<byte>.Shared.Rent(length) : null;
        Span<byte> copy = rented is null ? stackalloc byte[StackLineLimit] : rented;
        try
        {
            line.CopyTo(copy);
            return ParseLine(copy[..length], ref request, requestLine, out reason);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    private static HttpStatus ParseLine(ReadOnlySpan<byte> line, ref RequestHead request, bool requestLine, out string? reason) =>
        requestLine ? ParseRequestLine(line, ref request, out reason) : ParseField(line, ref request, out reason);

    private static HttpStatus ParseRequestLine(ReadOnlySpan<byte> line, ref RequestHead request, out string? reason)
    {
        int firstSpace = line.IndexOf((byte)' ');
        int lastSpace = line.LastIndexOf((byte)' ');
        if (firstSpace <= 0 || lastSpace == firstSpace)
        {
            reason = "request line is not METHOD SP TARGET SP VERSION";
            return HttpStatus.BadRequest;
        }

        ReadOnlySpan<byte> method = line[..firstSpace];
        ReadOnlySpan<byte> target = line[(firstSpace + 1)..lastSpace];
        ReadOnlySpan<byte> version = line[(lastSpace + 1)..];
        if (!IsToken(method) || target.Length == 0 || target.IndexOfAny((byte)' ', (byte)'\t') >= 0 || ContainsControl(target))
        {
            reason = "malformed method or request target";
            return HttpStatus.BadRequest;
        }

        if (version.SequenceEqual("HTTP/1.1"u8))
        {
            request.IsHttp11 = true;
        }
        else if (!version.SequenceEqual("HTTP/1.0"u8))
        {
            bool wellFormed = version.Length == 8 && version.StartsWith("HTTP/"u8) && char.IsAsciiDigit((char)version[5])
                && version[6] == '.' && char.IsAsciiDigit((char)version[7]);
            reason = wellFormed ? "unsupported HTTP version " + Encoding.ASCII.GetString(version) : "malformed HTTP version";
            return wellFormed ? HttpStatus.VersionNotSupported : HttpStatus.BadRequest;
        }

        request.Method = method.SequenceEqual("GET"u8) ? RequestMethod.Get
            : method.SequenceEqual("HEAD"u8) ? RequestMethod.Head
            : IsKnownMethod(method) ? RequestMethod.OtherKnown
            : RequestMethod.Unknown;

        if (target[0] == '/')
        {
            request.IsRoot = IsRootPath(target);
        }
        else if (StartsWithIgnoreCase(target, "http://"u8) || StartsWithIgnoreCase(target, "https://"u8))
        {
            // absolute-form (RFC 9112 §3.2.2): the path starts after the authority.
            ReadOnlySpan<byte> afterScheme = target[(target.IndexOf((byte)':') + 3)..];
            int slash = afterScheme.IndexOfAny((byte)'/', (byte)'?');
            request.IsRoot = slash < 0 || IsRootPath(afterScheme[slash..]) || afterScheme[slash] == '?';
        }
        else if (!(target.Length == 1 && target[0] == '*'))
        {
            reason = "request target is not a path or an absolute URL";
            return HttpStatus.BadRequest;
        }

        reason = null;
        return HttpStatus.Ok;
    }

    private static HttpStatus ParseField(ReadOnlySpan<byte> line, ref RequestHead request, out string? reason)
    {
        if (line[0] is (byte)' ' or (byte)'\t')
        {
            reason = "obsolete header line folding";
            return HttpStatus.BadRequest;
        }

        int colon = line.IndexOf((byte)':');
        if (colon <= 0 || !IsToken(line[..colon]))
        {
            reason = "malformed header field name";
            return HttpStatus.BadRequest;
        }

        ReadOnlySpan<byte> name = line[..colon];
        ReadOnlySpan<byte> value = line[(colon + 1)..].Trim(" \t"u8);
        if (ContainsControl(value))
        {
            reason = "control character in a header field value";
            return HttpStatus.BadRequest;
        }

        if (Ascii.EqualsIgnoreCase(name, "Content-Length"u8))
        {
            if (value.Length is 0 or > 18 || value.ContainsAnyExceptInRange((byte)'0', (byte)'9'))
            {
                reason = "invalid Content-Length";
                return HttpStatus.BadRequest;
            }

            long length = 0;
            foreach (byte digit in value)
            {
                length = (length * 10) + (digit - '0');
            }

            if (request.ContentLength >= 0 && request.ContentLength != length)
            {
                reason = "conflicting Content-Length headers";
                return HttpStatus.BadRequest;
            }

            request.ContentLength = length;
        }
        else if (Ascii.EqualsIgnoreCase(name, "Transfer-Encoding"u8))
        {
            request.HasTransferEncoding = true;
        }
        else if (Ascii.EqualsIgnoreCase(name, "Host"u8))
        {
            request.HostCount++;
        }
        else if (Ascii.EqualsIgnoreCase(name, "Connection"u8))
        {
            foreach (Range part in value.Split((byte)','))
            {
                ReadOnlySpan<byte> option = value[part].Trim(" \t"u8);
                request.ConnectionClose |= Ascii.EqualsIgnoreCase(option, "close"u8);
                request.ConnectionKeepAlive |= Ascii.EqualsIgnoreCase(option, "keep-alive"u8);
            }
        }

        reason = null;
        return HttpStatus.Ok;
    }

    private static bool IsRootPath(ReadOnlySpan<byte> path) => path.Length == 1 || path[1] == '?' || path[1] == '#';

    private static bool EndsWithCr(in ReadOnlySequence<byte> buffer, long index) =>
        buffer.Slice(index, 1).FirstSpan[0] == '\r';

    private static bool StartsWithIgnoreCase(ReadOnlySpan<byte> value, ReadOnlySpan<byte> prefix) =>
        value.Length >= prefix.Length && Ascii.EqualsIgnoreCase(value[..prefix.Length], prefix);

    private static bool ContainsControl(ReadOnlySpan<byte> value)
    {
        foreach (byte b in value)
        {
            if ((b < 0x20 && b != '\t') || b == 0x7F)
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsKnownMethod(ReadOnlySpan<byte> method) =>
        method.SequenceEqual("POST"u8) || method.SequenceEqual("PUT"u8) || method.SequenceEqual("DELETE"u8)
        || method.SequenceEqual("OPTIONS"u8) || method.SequenceEqual("PATCH"u8) || method.SequenceEqual("TRACE"u8)
        || method.SequenceEqual("CONNECT"u8);

    /// <summary>RFC 9110 §5.6.2 token characters.</summary>
    private static bool IsToken(ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty)
        {
            return false;
        }

        foreach (byte b in value)
        {
            if (!IsTokenChar(b))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsTokenChar(byte b) =>
        char.IsAsciiLetterOrDigit((char)b) || b is (byte)'!' or (byte)'#' or (byte)'$' or (byte)'%' or (byte)'&'
            or (byte)'\'' or (byte)'*' or (byte)'+' or (byte)'-' or (byte)'.' or (byte)'^' or (byte)'_' or (byte)'`'
            or (byte)'|' or (byte)'~';
}
