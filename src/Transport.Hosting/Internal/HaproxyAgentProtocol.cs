using System.IO.Pipelines;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Transport.Hosting.Internal;

/// <summary>
/// HAProxy's agent-check text protocol: on each connection, one ASCII line from the server's live state, then close.
/// HAProxy may send an <c>agent-send</c> string first; it is not needed (the endpoints reported are configured), and the
/// transport reads and discards it while closing, so it never turns the close into a reset.
/// </summary>
[StreamTransportOnly]
internal sealed class HaproxyAgentProtocol(
    TransportServer server,
    IOptions<HaproxyAgentOptions> options,
    ILoggerFactory loggerFactory,
    IHostApplicationLifetime? lifetime = null) : ConnectionHandler
{
    public const string ProtocolName = "haproxy-agent";

    private readonly ILogger _logger = loggerFactory.CreateLogger("Transport.Hosting");
    private int _lastState = -1;

    /// <summary>What the agent says, in the order it is decided.</summary>
    private enum AgentState
    {
        Up,
        Drain,
        Starting,
        Stopping,
        NotAccepting,
    }

    public static bool IsAgent(string? protocol) => string.Equals(protocol, ProtocolName, StringComparison.OrdinalIgnoreCase);

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        PipeWriter output = connection.Transport.Output;
        Span<byte> line = output.GetSpan(64);
        int length = Write(line, out AgentState state);
        output.Advance(length);
        if (_logger.IsEnabled(LogLevel.Debug))
        {
            TransportLog.AgentAnswered(_logger, connection.ConnectionId, Encoding.ASCII.GetString(line[..(length - 1)]));
        }

        int previous = Interlocked.Exchange(ref _lastState, (int)state);
        if (previous != (int)state)
        {
            TransportLog.AgentStateChanged(_logger, Describe(state), previous < 0 ? "nothing" : Describe((AgentState)previous));
        }

        await output.FlushAsync(connection.ConnectionClosed).ConfigureAwait(false);
        await output.CompleteAsync().ConfigureAwait(false);
    }

    /// <summary>The reply line, LF included, into <paramref name="line"/> (64 bytes are enough); its length.</summary>
    private int Write(Span<byte> line, out AgentState state)
    {
        state = Decide();
        ReadOnlySpan<byte> fixedReply = state switch
        {
            AgentState.Drain => "drain\n"u8,
            AgentState.Starting => "down#starting\n"u8,
            AgentState.Stopping => "down#stopping\n"u8,
            AgentState.NotAccepting => "down#accept-failing\n"u8,
            _ => default,
        };
        if (!fixedReply.IsEmpty)
        {
            fixedReply.CopyTo(line);
            return fixedReply.Length;
        }

        // "up" and "ready" undo an earlier agent's down and drain (an instance restarted on the same address).
        Load(out long weight, out long maxConnections);
        int at = Append(line, 0, "up ready "u8);
        weight.TryFormat(line[at..], out int digits, provider: System.Globalization.CultureInfo.InvariantCulture);
        at += digits;
        at = Append(line, at, "%"u8);
        if (maxConnections > 0)
        {
            at = Append(line, at, " maxconn:"u8);
            maxConnections.TryFormat(line[at..], out digits, provider: System.Globalization.CultureInfo.InvariantCulture);
            at += digits;
        }

        return Append(line, at, "\n"u8);
    }

    private AgentState Decide()
    {
        ShutdownState shutdown = server.ShutdownState;
        if (shutdown >= ShutdownState.NotAccepting)
        {
            return AgentState.Stopping;
        }

        if (shutdown == ShutdownState.Draining || lifetime?.ApplicationStopping.IsCancellationRequested == true)
        {
            return AgentState.Drain;
        }

        if (lifetime is not null && !lifetime.ApplicationStarted.IsCancellationRequested)
        {
            return AgentState.Starting;
        }

        return AnyReportedAcceptFailing() ? AgentState.NotAccepting : AgentState.Up;
    }

    /// <summary>An endpoint the agent reports on cannot accept (out of descriptors, say): new work would be refused.</summary>
    private bool AnyReportedAcceptFailing()
    {
        IList<string> reported = options.Value.Endpoints;
        foreach (EndpointListener listener in server.Listeners)
        {
            if (Reports(reported, listener) && listener.AcceptFailing)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The weight: the smallest share (percent) of a reported endpoint's connection limit still free, 100 without limits;
    /// maxconn: the smallest limit, 0 for none.
    /// </summary>
    private void Load(out long weight, out long maxConnections)
    {
        weight = 100;
        maxConnections = 0;
        IList<string> reported = options.Value.Endpoints;
        foreach (EndpointListener listener in server.Listeners)
        {
            if (!Reports(reported, listener) || listener.MaxConnections is not { } limit)
            {
                continue;
            }

            long free = Math.Clamp((limit - listener.ActiveConnections) * 100 / limit, 0, 100);
            weight = Math.Min(weight, free);
            maxConnections = maxConnections == 0 ? limit : Math.Min(maxConnections, limit);
        }
    }

    private static bool Reports(IList<string> reported, EndpointListener listener)
    {
        if (reported.Count == 0)
        {
            return !IsAgent(listener.ProtocolName);
        }

        for (int i = 0; i < reported.Count; i++)
        {
            if (string.Equals(reported[i], listener.Name, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    private static int Append(Span<byte> line, int at, ReadOnlySpan<byte> text)
    {
        text.CopyTo(line[at..]);
        return at + text.Length;
    }

    private static string Describe(AgentState state) => state switch
    {
        AgentState.Up => "up",
        AgentState.Drain => "drain",
        AgentState.Starting => "down#starting",
        AgentState.NotAccepting => "down#accept-failing",
        _ => "down#stopping",
    };
}
