using System.Buffers;
using System.Diagnostics.Metrics;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Transport.Protocols.Greeting.Internal;

namespace Transport.Protocols.Greeting;

/// <summary>
/// The greeting server: HTTP/1.0 (RFC 1945), robust to HTTP/1.1 clients (RFC 9112). <c>GET /</c> and
/// <c>HEAD /</c> get the greeting page; other paths 404; other methods 405 (known) or 501 (unknown);
/// malformed requests 400; too long a request line 414; too many or too large headers 431; unsupported
/// versions 505; <c>Transfer-Encoding</c> 501; a body over the limit 413; a client too slow to send its request
/// 408. Errors close the connection. Keep-alive is honoured when the client asks for it (HTTP/1.1 by default,
/// HTTP/1.0 with <c>Connection: keep-alive</c>), up to <see cref="GreetingOptions.MaxRequestsPerConnection"/>.
/// Register it with <c>AddProtocol&lt;GreetingProtocol&gt;("greeting")</c> and configure <see cref="GreetingOptions"/>.
/// </summary>
/// <remarks>
/// A rejected request is the client's bad input, not a server error: it is logged at Debug with its reason (no
/// stack trace) and counted in <c>greeting.requests.rejected</c> (meter <c>Transport.Protocols.Greeting</c>,
/// tagged with <c>http.response.status_code</c>) when the service provider has an <see cref="IMeterFactory"/>.
/// </remarks>
[StreamTransportOnly]
public sealed partial class GreetingProtocol : ConnectionHandler, IDisposable
{
    /// <summary>The name of the meter the protocol's instruments are in: <c>Transport.Protocols.Greeting</c>.</summary>
    public const string MeterName = "Transport.Protocols.Greeting";

    private readonly GreetingOptions _options;
    private readonly HttpResponses _responses;
    private readonly RequestTimeouts _timeouts;
    private readonly ILogger _logger;
    private readonly Counter<int>? _rejected;

    /// <summary>Creates the protocol.</summary>
    /// <param name="options">The page and the limits.</param>
    /// <param name="time">The clock for timeouts and the <c>Date</c> header; the system clock when null.</param>
    /// <param name="logger">Logs each rejected request with its reason at Debug.</param>
    /// <param name="meterFactory">Creates the meter that counts rejected requests; none when null.</param>
    /// <exception cref="OptionsValidationException">An option is out of range.</exception>
    public GreetingProtocol(IOptions<GreetingOptions> options, TimeProvider? time = null, ILogger<GreetingProtocol>? logger = null,
        IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        new GreetingOptionsValidator(nameof(GreetingOptions), null).ThrowIfInvalid(_options);
        time ??= TimeProvider.System;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _responses = new HttpResponses(_options, new HttpDate(time));
        _timeouts = new RequestTimeouts(time, _logger);
        _rejected = meterFactory?.Create(MeterName).CreateCounter<int>("greeting.requests.rejected", "{request}",
            "Requests answered with an error status (the client's bad input or slowness), by status code.");
    }


    /// <summary>The greeting page the server sends for <c>GET /</c>.</summary>
    public ReadOnlyMemory<byte> Page => _responses.Page;

    /// <inheritdoc />
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        PipeReader input = connection.Transport.Input;
        PipeWriter output = connection.Transport.Output;
        var parser = new HttpRequestParser(_options);
        // Armed before the first read (and the keep-alive deadline before each answer goes out, below): the clock
        // runs from when the connection, or the idle wait, began, not from whenever this code gets scheduled.
        using RequestTimeouts.Deadline timeout = _timeouts.Register(input, _options.RequestHeadersTimeout);
        for (int served = 0; ; served++)
        {
            parser.Reset();
            bool keptAlive = served > 0;
            bool started = false;
            RequestHead request;
            HttpStatus status;
            string? reason;
            while (true)
            {
                ReadResult read = await input.ReadAsync().ConfigureAwait(false);
                if (read.IsCanceled && timeout.Expired)
                {
                    input.AdvanceTo(read.Buffer.Start);
                    if (started || !keptAlive)
                    {
                        RecordRejection(connection.ConnectionId, (int)HttpStatus.RequestTimeout, "the request did not arrive in time");
                        await SendAsync(output, HttpStatus.RequestTimeout, keepAlive: false, includeBody: true).ConfigureAwait(false);
                    }

                    return;
                }

                ReadOnlySequence<byte> buffer = read.Buffer;
                if (!started && !buffer.IsEmpty)
                {
                    started = true;
                    if (keptAlive)
                    {
                        timeout.Set(_options.RequestHeadersTimeout);
                    }
                }

                HttpStatus? found = parser.FindHeadEnd(buffer, out SequencePosition headEnd, out reason);
                if (found == HttpStatus.Ok)
                {
                    status = HttpRequestParser.Parse(buffer.Slice(0, headEnd), out request, out reason);
                    input.AdvanceTo(headEnd);
                    break;
                }

                if (found is { } error)
                {
                    input.AdvanceTo(buffer.End);
                    RecordRejection(connection.ConnectionId, (int)error, reason);
                    await SendAsync(output, error, keepAlive: false, includeBody: true).ConfigureAwait(false);
                    return;
                }

                if (read.IsCompleted)
                {
                    input.AdvanceTo(buffer.End);
                    if (!buffer.IsEmpty)
                    {
                        RecordRejection(connection.ConnectionId, (int)HttpStatus.BadRequest, "the connection ended inside a request head");
                        await SendAsync(output, HttpStatus.BadRequest, keepAlive: false, includeBody: true).ConfigureAwait(false);
                    }

                    return;
                }

                input.AdvanceTo(buffer.Start, buffer.End);
            }

            status = Decide(status, ref request, ref reason);
            bool keepAlive = status is HttpStatus.Ok or HttpStatus.NotFound
                && _options.AllowKeepAlive
                && (request.IsHttp11 ? !request.ConnectionClose : request.ConnectionKeepAlive)
                && served + 1 < _options.MaxRequestsPerConnection;
            if (status is not (HttpStatus.Ok or HttpStatus.NotFound))
            {
                RecordRejection(connection.ConnectionId, (int)status, reason);
            }
            else if (request.ContentLength > 0 && !await DiscardBodyAsync(input, request.ContentLength, timeout).ConfigureAwait(false))
            {
                return;
            }

            if (keepAlive)
            {
                timeout.Set(_options.KeepAliveTimeout);
            }
            else
            {
                timeout.Clear();
            }

            FlushResult flushed = await SendAsync(output, status, keepAlive, includeBody: request.Method != RequestMethod.Head).ConfigureAwait(false);
            if (!keepAlive || flushed.IsCompleted)
            {
                return;
            }
        }
    }

    /// <summary>Connections whose request deadline is registered with the heartbeat (for tests).</summary>
    internal int PendingDeadlines => _timeouts.Count;

    /// <summary>Stops the timeout heartbeat.</summary>
    public void Dispose() => _timeouts.Dispose();

    private HttpStatus Decide(HttpStatus parsed, ref RequestHead request, ref string? reason)
    {
        if (parsed != HttpStatus.Ok)
        {
            return parsed;
        }

        if (request.HasTransferEncoding)
        {
            reason = "Transfer-Encoding is not supported; send Content-Length";
            return HttpStatus.NotImplemented;
        }

        if (request.ContentLength > _options.MaxRequestBodySize)
        {
            reason = $"body of {request.ContentLength} bytes is over the limit of {_options.MaxRequestBodySize}";
            return HttpStatus.ContentTooLarge;
        }

        if (request.Method == RequestMethod.Unknown)
        {
            reason = "unknown method";
            return HttpStatus.NotImplemented;
        }

        if (request.Method == RequestMethod.OtherKnown)
        {
            reason = "method not allowed; GET and HEAD are";
            return HttpStatus.MethodNotAllowed;
        }

        return request.IsRoot ? HttpStatus.Ok : HttpStatus.NotFound;
    }

    /// <summary>Reads and drops a request body; false when the client stopped or was too slow.</summary>
    private static async ValueTask<bool> DiscardBodyAsync(PipeReader input, long remaining, RequestTimeouts.Deadline timeout)
    {
        while (remaining > 0)
        {
            ReadResult read = await input.ReadAsync().ConfigureAwait(false);
            if (read.IsCanceled && timeout.Expired)
            {
                input.AdvanceTo(read.Buffer.Start);
                return false;
            }

            long take = Math.Min(remaining, read.Buffer.Length);
            input.AdvanceTo(read.Buffer.GetPosition(take));
            remaining -= take;
            if (remaining > 0 && read.IsCompleted)
            {
                return false;
            }
        }

        return true;
    }

    private ValueTask<FlushResult> SendAsync(PipeWriter output, HttpStatus status, bool keepAlive, bool includeBody)
    {
        _responses.Write(output, status, keepAlive, includeBody);
        return output.FlushAsync();
    }

    private void RecordRejection(string connectionId, int status, string? reason)
    {
        Log.BadRequest(_logger, connectionId, status, reason ?? "bad request");
        if (_rejected is { Enabled: true })
        {
            _rejected.Add(1, new KeyValuePair<string, object?>("http.response.status_code", status));
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Debug, "Connection {ConnectionId}: answered {Status} to a bad request: {Reason}.")]
        public static partial void BadRequest(ILogger logger, string connectionId, int status, string reason);
    }
}
