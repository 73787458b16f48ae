using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Security.Authentication;

namespace Transport.Hosting.Internal.Tls;

/// <summary>
/// The TLS instruments, in the <c>Transport</c> meter, shaped like Kestrel's <c>kestrel.tls_handshake.duration</c> and
/// <c>kestrel.active_tls_handshakes</c>, plus what Kestrel does not offer: each served certificate's time to expiry.
/// </summary>
internal sealed class TlsMetrics
{
    // Kestrel's boundaries for its short durations (tls_handshake.duration among them).
    private static readonly IReadOnlyList<double> s_handshakeBuckets = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

    private readonly Histogram<double> _duration;
    private readonly UpDownCounter<long> _active;
    private readonly TimeProvider _time;
    private readonly List<(string Endpoint, string? ServerName, ServerCertificate Certificate)> _certificates = [];
    private readonly Lock _lock = new();

    public TlsMetrics(Meter meter, TimeProvider time)
    {
        _time = time;
        _duration = meter.CreateHistogram("transport.tls_handshake.duration", "s",
            "How long TLS handshakes took; tls.protocol.version on success, error.type on failure.",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = s_handshakeBuckets });
        _active = meter.CreateUpDownCounter<long>("transport.active_tls_handshakes", "{handshake}",
            "TLS handshakes in progress.");
        meter.CreateObservableGauge("transport.tls.certificate.expiry", ObserveExpiry, "s",
            "Seconds until each served certificate's NotAfter (negative once expired), per endpoint and SNI name (tls.client.server_name).");
    }

    /// <summary>The tag sets of one endpoint's handshakes, computed once, so that a handshake measures without allocating.</summary>
    public static HandshakeTags TagsFor(string endpoint) => new(endpoint);

    /// <summary>Starts measuring one handshake; 0 when nothing listens (and then <see cref="HandshakeEnded"/> does nothing).</summary>
    public long HandshakeStarted(HandshakeTags tags)
    {
        if (!_duration.Enabled && !_active.Enabled)
        {
            return 0;
        }

        _active.Add(1, tags.Endpoint);
        return Stopwatch.GetTimestamp();
    }

    /// <summary>Ends the measurement of a handshake begun with <see cref="HandshakeStarted"/>; <paramref name="errorType"/> null on success.</summary>
    public void HandshakeEnded(HandshakeTags tags, long started, SslProtocols protocol, string? errorType)
    {
        if (started == 0)
        {
            return;
        }

        _active.Add(-1, tags.Endpoint);
        if (_duration.Enabled)
        {
            _duration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags.Ended(protocol, errorType));
        }
    }

    /// <summary>Reports <paramref name="certificate"/>'s expiry until the returned registration is disposed.</summary>
    public IDisposable Track(string endpoint, string? serverName, ServerCertificate certificate)
    {
        var entry = (endpoint, serverName, certificate);
        lock (_lock)
        {
            _certificates.Add(entry);
        }

        return new Registration(this, entry);
    }

    private IEnumerable<Measurement<double>> ObserveExpiry()
    {
        (string Endpoint, string? ServerName, ServerCertificate Certificate)[] certificates;
        lock (_lock)
        {
            certificates = [.. _certificates];
        }

        DateTimeOffset now = _time.GetUtcNow();
        foreach ((string endpoint, string? serverName, ServerCertificate certificate) in certificates)
        {
            double seconds = (new DateTimeOffset(certificate.NotAfter.ToUniversalTime()) - now).TotalSeconds;
            yield return serverName is null
                ? new Measurement<double>(seconds, new KeyValuePair<string, object?>("transport.endpoint", endpoint))
                : new Measurement<double>(seconds, new KeyValuePair<string, object?>("transport.endpoint", endpoint),
                    new KeyValuePair<string, object?>("tls.client.server_name", serverName));
        }
    }

    private sealed class Registration(TlsMetrics metrics, (string, string?, ServerCertificate) entry) : IDisposable
    {
        public void Dispose()
        {
            lock (metrics._lock)
            {
                metrics._certificates.Remove(entry);
            }
        }
    }

    internal sealed class HandshakeTags
    {
        private readonly KeyValuePair<string, object?>[] _tls12;
        private readonly KeyValuePair<string, object?>[] _tls13;
        private readonly KeyValuePair<string, object?>[] _failed;
        private readonly KeyValuePair<string, object?>[] _timedOut;

        public HandshakeTags(string endpoint)
        {
            KeyValuePair<string, object?> name = new("transport.endpoint", endpoint);
            Endpoint = [name];
            _tls12 = [name, new("tls.protocol.version", "1.2")];
            _tls13 = [name, new("tls.protocol.version", "1.3")];
            _failed = [name, new("error.type", TlsServerMiddleware.HandshakeFailed)];
            _timedOut = [name, new("error.type", TlsServerMiddleware.HandshakeTimeout)];
        }

        public KeyValuePair<string, object?>[] Endpoint { get; }

        public ReadOnlySpan<KeyValuePair<string, object?>> Ended(SslProtocols protocol, string? errorType) => errorType switch
        {
            null => protocol switch
            {
                SslProtocols.Tls13 => _tls13,
                SslProtocols.Tls12 => _tls12,
                _ => [Endpoint[0], new("tls.protocol.version", protocol.ToString())],
            },
            TlsServerMiddleware.HandshakeTimeout => _timedOut,
            _ => _failed,
        };
    }
}
