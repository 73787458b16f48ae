using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Transport.Hosting.Internal;

/// <summary>
/// What an endpoint serves new connections with: the built pipeline, its protocol and limits. Immutable; a configuration
/// reload replaces it as a whole, and the accept loop reads it once per accepted connection, so a connection runs from
/// start to end on the generation it was accepted with. The resources its pipeline holds (certificate watchers) are
/// released once it has been replaced and its last connection has ended.
/// </summary>
internal sealed class EndpointGeneration
{
    // The state: the number of connections running on this generation, plus Retired once it has been replaced; Released
    // once its resources are gone (no connection can enter then).
    private const long Retired = 1L << 40;
    private const long Released = -1;
    private readonly IReadOnlyList<IDisposable> _owned;
    private readonly ILogger _logger;
    private readonly string _name;
    private long _state;

    // The generation that counts connections and owns the resources, when this one is only another address's tags.
    private EndpointGeneration? _shared;

    public EndpointGeneration(string name, ConnectionDelegate application, string protocolName, long? maxConnections, TimeSpan shutdownTimeout,
        System.Net.EndPoint? endpoint, IReadOnlyList<IDisposable> owned, ILogger logger)
    {
        _name = name;
        _logger = logger;
        Application = application;
        ProtocolName = protocolName;
        MaxConnections = maxConnections;
        ShutdownTimeout = shutdownTimeout;
        Telemetry = new EndpointTelemetry(name, protocolName, endpoint);
        _owned = owned;
    }

    public ConnectionDelegate Application { get; }

    public string ProtocolName { get; }

    /// <summary>The endpoint's MaxConcurrentConnections; null for no limit.</summary>
    public long? MaxConnections { get; }

    public TimeSpan ShutdownTimeout { get; }

    /// <summary><c>Telemetry:ConnectionSpans</c>: a span per connection.</summary>
    public bool ConnectionSpans { get; init; }

    /// <summary>The endpoint's tag sets (the protocol is one of the tags).</summary>
    public EndpointTelemetry Telemetry { get; }

    /// <summary>This generation with one listener's address in its tags; it counts connections in this one.</summary>
    public EndpointGeneration ForAddress(System.Net.EndPoint? endpoint) =>
        new(_name, Application, ProtocolName, MaxConnections, ShutdownTimeout, endpoint, _owned, _logger) { ConnectionSpans = ConnectionSpans, _shared = Owner };

    /// <summary>This generation serving connections with <paramref name="application"/> instead (systemd's Accept=yes wraps it); it counts connections in this one.</summary>
    public EndpointGeneration WithApplication(ConnectionDelegate application) =>
        new(_name, application, ProtocolName, MaxConnections, ShutdownTimeout, null, _owned, _logger) { ConnectionSpans = ConnectionSpans, _shared = Owner };

    private EndpointGeneration Owner => _shared ?? this;

    /// <summary>Counts a connection in; false once the generation's resources are released (read the current one again).</summary>
    public bool TryEnter()
    {
        EndpointGeneration owner = Owner;
        while (true)
        {
            long state = Volatile.Read(ref owner._state);
            if (state == Released)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref owner._state, state + 1, state) == state)
            {
                return true;
            }
        }
    }

    public void Leave()
    {
        EndpointGeneration owner = Owner;
        if (Interlocked.Decrement(ref owner._state) == Retired)
        {
            owner.Release();
        }
    }

    /// <summary>Replaced (or its endpoint stopped): its resources go as soon as no connection runs on it.</summary>
    public void Retire()
    {
        EndpointGeneration owner = Owner;
        long state = Volatile.Read(ref owner._state);
        if (state == Released || (state & Retired) != 0)
        {
            return;
        }

        if (Interlocked.Add(ref owner._state, Retired) == Retired)
        {
            owner.Release();
        }
    }

    private void Release()
    {
        if (Interlocked.CompareExchange(ref _state, Released, Retired) != Retired)
        {
            return;
        }

        foreach (IDisposable resource in _owned)
        {
            try
            {
                resource.Dispose();
            }
            catch (Exception ex)
            {
                // A certificate watcher that fails to stop must not stop the others, nor the connection that ended last.
                TransportLog.ReleaseFailed(_logger, _name, ex);
            }
        }
    }
}
