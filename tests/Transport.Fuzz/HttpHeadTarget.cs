using System.Buffers;
using Transport.Protocols.Greeting;
using Transport.Protocols.Greeting.Internal;

namespace Transport.Fuzz;

/// <summary>
/// The greeting server's request-head parser, driven as GreetingProtocol drives it: FindHeadEnd on everything
/// buffered each time bytes arrive, Parse on the head it delimits, the body skipped, the next request on a
/// kept-alive connection. Every verdict must be the same however the bytes are cut into reads; nothing may
/// throw; and the parser must never buffer more than its limits allow while it waits for a head's end.
/// </summary>
internal static class HttpHeadTarget
{
    private static readonly HashSet<HttpStatus> Answers =
    [
        HttpStatus.Ok, HttpStatus.BadRequest, HttpStatus.UriTooLong, HttpStatus.HeaderFieldsTooLarge,
        HttpStatus.NotImplemented, HttpStatus.VersionNotSupported,
    ];

    public static void Run(ReadOnlySpan<byte> bytes)
    {
        var input = new FuzzInput(bytes);
        GreetingOptions options = OptionsFrom(ref input);
        byte seed = input.Choice();
        ReadOnlyMemory<byte> data = input.Rest.ToArray();
        int[] sizes = Chunks.Cut(data.Length, seed);

        List<string> whole = Serve(new ReadOnlySequence<byte>(data), [data.Length], options);
        List<string> arriving = Serve(Chunks.ToSequence(data, sizes), sizes, options);
        Check.That(whole.SequenceEqual(arriving),
            $"verdicts depend on how the bytes arrive: all at once [{string.Join("; ", whole)}], in chunks [{string.Join("; ", arriving)}]");
    }

    private static GreetingOptions OptionsFrom(ref FuzzInput input)
    {
        byte shape = input.Choice();
        if ((shape & 1) == 0)
        {
            return new GreetingOptions();
        }

        // Small limits, so that short inputs reach them.
        return new GreetingOptions
        {
            MaxRequestLineLength = 8 + input.Choice(),
            MaxRequestHeaderCount = input.Choice() % 16,
            MaxRequestHeadersTotalSize = 8 + (2 * input.Choice()),
            MaxRequestBodySize = input.Choice(),
        };
    }

    /// <summary>The server's read loop, with the bytes arriving <paramref name="arrivals"/> at a time.</summary>
    private static List<string> Serve(ReadOnlySequence<byte> all, int[] arrivals, GreetingOptions options)
    {
        var verdicts = new List<string>();
        var parser = new HttpRequestParser(options);
        // Empty lines before the request line (up to its limit), the request line and its CRLF, the header section.
        long bound = (2L * options.MaxRequestLineLength) + 2 + options.MaxRequestHeadersTotalSize + 1;
        long start = 0;
        long arrived = 0;
        int next = 0;
        while (true)
        {
            parser.Reset();
            RequestHead request;
            while (true)
            {
                ReadOnlySequence<byte> buffer = all.Slice(start, arrived - start);
                HttpStatus? found = parser.FindHeadEnd(buffer, out SequencePosition headEnd, out string? reason);
                if (found == HttpStatus.Ok)
                {
                    long headLength = Chunks.Offset(buffer, headEnd);
                    Check.That(headLength > 0 && headLength <= buffer.Length, $"the head ends at {headLength} of {buffer.Length} bytes");
                    HttpStatus status = HttpRequestParser.Parse(buffer.Slice(0, headEnd), out request, out reason);
                    Check.That(Answers.Contains(status), $"Parse answered {status}");
                    Check.That((status == HttpStatus.Ok) == (reason is null), $"status {status} with reason '{reason}'");
                    verdicts.Add($"@{start} {(int)status} {reason} {request.Method} root={request.IsRoot} 1.1={request.IsHttp11} " +
                        $"close={request.ConnectionClose} keep-alive={request.ConnectionKeepAlive} length={request.ContentLength} " +
                        $"te={request.HasTransferEncoding} hosts={request.HostCount}");
                    start += headLength;
                    if (status != HttpStatus.Ok)
                    {
                        return verdicts;
                    }

                    break;
                }

                if (found is { } error)
                {
                    Check.That(Answers.Contains(error) && reason is not null, $"FindHeadEnd answered {error} with reason '{reason}'");
                    verdicts.Add($"@{start} {(int)error}");
                    return verdicts;
                }

                Check.That(buffer.Length <= bound, $"{buffer.Length} bytes buffered without an answer; the limits allow {bound}");
                if (arrived == all.Length)
                {
                    verdicts.Add(buffer.IsEmpty ? "end" : $"@{start} ended inside a head");
                    return verdicts;
                }

                arrived += arrivals[next++];
            }

            // GreetingProtocol.Decide: only these requests are answered and kept alive, after their body is read.
            if (request.HasTransferEncoding || request.ContentLength > options.MaxRequestBodySize
                || request.Method is not (RequestMethod.Get or RequestMethod.Head)
                || !(request.IsHttp11 ? !request.ConnectionClose : request.ConnectionKeepAlive))
            {
                return verdicts;
            }

            if (request.ContentLength > 0)
            {
                if (start + request.ContentLength > all.Length)
                {
                    verdicts.Add("ended inside a body");
                    return verdicts;
                }

                start += request.ContentLength;
                while (arrived < start)
                {
                    arrived += arrivals[next++];
                }
            }
        }
    }
}
