using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Transport.Protocols.KeyValue.Internal;

/// <summary>
/// The in-process store: byte-string keys and values with optional expiry, safe for every connection at once.
/// Lookups take the key as a span (no allocation); a write allocates the value and, for a new key, the key.
/// Expired keys vanish on access and in a sweep once a second.
/// </summary>
internal sealed partial class KeyValueStore : IDisposable
{
    private readonly ConcurrentDictionary<byte[], Entry> _entries = new(ByteStringComparer.Instance);
    private readonly ConcurrentDictionary<byte[], Entry>.AlternateLookup<ReadOnlySpan<byte>> _byKey;
    private readonly TimeProvider _time;
    private readonly ITimer _sweeper;
    private readonly ILogger _logger;
    private int _mayHaveVolatileKeys;

    public KeyValueStore(TimeProvider time, ILogger logger)
    {
        _time = time;
        _logger = logger;
        _byKey = _entries.GetAlternateLookup<ReadOnlySpan<byte>>();
        _sweeper = time.CreateTimer(static state => ((KeyValueStore)state!).Sweep(), this, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    public enum SetCondition
    {
        Always,
        IfMissing,
        IfExists,
    }

    /// <summary>Now, in the store's clock (milliseconds, monotonic).</summary>
    public long Now => _time.GetTimestamp() / Math.Max(1, _time.TimestampFrequency / 1000);

    public long Count => _entries.Count;

    public void Dispose() => _sweeper.Dispose();

    public bool TryGet(ReadOnlySpan<byte> key, out byte[] value)
    {
        if (TryGetLive(key, out _, out Entry? entry))
        {
            value = entry.Value;
            return true;
        }

        value = [];
        return false;
    }

    public bool Exists(ReadOnlySpan<byte> key) => TryGetLive(key, out _, out _);

    /// <summary>SET: stores <paramref name="value"/> unless <paramref name="condition"/> says no.</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value, copied.</param>
    /// <param name="condition">NX, XX or neither.</param>
    /// <param name="expiresAt">Absolute expiry in <see cref="Now"/>'s clock; 0 for none.</param>
    /// <param name="keepTtl">Keep the existing key's expiry instead.</param>
    /// <param name="previous">The value before, if there was one.</param>
    /// <returns>Whether the value was stored.</returns>
    public bool Set(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, SetCondition condition, long expiresAt, bool keepTtl, out byte[]? previous)
    {
        byte[] copy = value.ToArray();
        while (true)
        {
            if (TryGetLive(key, out byte[]? actualKey, out Entry? existing))
            {
                previous = existing.Value;
                if (condition == SetCondition.IfMissing)
                {
                    return false;
                }

                if (_entries.TryUpdate(actualKey, new Entry(copy, keepTtl ? existing.ExpiresAt : expiresAt), existing))
                {
                    NoteExpiry(expiresAt);
                    return true;
                }

                continue;
            }

            previous = null;
            if (condition == SetCondition.IfExists)
            {
                return false;
            }

            if (_byKey.TryAdd(key, new Entry(copy, expiresAt)))
            {
                NoteExpiry(expiresAt);
                return true;
            }
        }
    }

    public bool Remove(ReadOnlySpan<byte> key) =>
        _byKey.TryRemove(key, out _, out Entry? removed) && !IsExpired(removed);

    /// <summary>INCRBY: adds <paramref name="delta"/> to the integer value (a missing key counts as 0), keeping the expiry.</summary>
    /// <returns>null when it worked, else the error reply.</returns>
    public string? Increment(ReadOnlySpan<byte> key, long delta, out long result)
    {
        while (true)
        {
            bool found = TryGetLive(key, out byte[]? actualKey, out Entry? existing);
            long current = 0;
            if (found && !RespNumbers.TryParseInt64(existing!.Value, out current))
            {
                result = 0;
                return "ERR value is not an integer or out of range";
            }

            if ((delta > 0 && current > long.MaxValue - delta) || (delta < 0 && current < long.MinValue - delta))
            {
                result = 0;
                return "ERR increment or decrement would overflow";
            }

            result = current + delta;
            byte[] value = RespNumbers.Format(result);
            if (found ? _entries.TryUpdate(actualKey!, new Entry(value, existing!.ExpiresAt), existing) : _byKey.TryAdd(key, new Entry(value, 0)))
            {
                return null;
            }
        }
    }

    /// <summary>The time to live in milliseconds: -2 for no such key, -1 for no expiry.</summary>
    public long TimeToLive(ReadOnlySpan<byte> key)
    {
        if (!TryGetLive(key, out _, out Entry? entry))
        {
            return -2;
        }

        return entry.ExpiresAt == 0 ? -1 : Math.Max(0, entry.ExpiresAt - Now);
    }

    /// <summary>EXPIRE: sets the key's absolute expiry; false when there is no such key.</summary>
    public bool Expire(ReadOnlySpan<byte> key, long expiresAt)
    {
        while (TryGetLive(key, out byte[]? actualKey, out Entry? existing))
        {
            if (_entries.TryUpdate(actualKey, new Entry(existing.Value, expiresAt), existing))
            {
                NoteExpiry(expiresAt);
                return true;
            }
        }

        return false;
    }

    public void Clear() => _entries.Clear();

    private bool TryGetLive(ReadOnlySpan<byte> key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out byte[]? actualKey,
        [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Entry? entry)
    {
        if (!_byKey.TryGetValue(key, out actualKey, out entry))
        {
            return false;
        }

        if (!IsExpired(entry))
        {
            return true;
        }

        // Remove only this expired entry, not a newer value another connection has just written.
        ((ICollection<KeyValuePair<byte[], Entry>>)_entries).Remove(new KeyValuePair<byte[], Entry>(actualKey, entry));
        actualKey = null;
        entry = null;
        return false;
    }

    private bool IsExpired(Entry entry) => entry.ExpiresAt != 0 && entry.ExpiresAt <= Now;

    private void NoteExpiry(long expiresAt)
    {
        if (expiresAt != 0)
        {
            Volatile.Write(ref _mayHaveVolatileKeys, 1);
        }
    }

    private void Sweep()
    {
        if (Interlocked.Exchange(ref _mayHaveVolatileKeys, 0) == 0)
        {
            return;
        }

        try
        {
            SweepExpired();
        }
        catch (Exception ex)
        {
            // An exception escaping a timer callback ends the process. The clock is the user's: the next tick tries again.
            Volatile.Write(ref _mayHaveVolatileKeys, 1);
            Log.SweepFailed(_logger, ex);
        }
    }

    private void SweepExpired()
    {
        bool volatileLeft = false;
        long now = Now;
        foreach (KeyValuePair<byte[], Entry> pair in _entries)
        {
            if (pair.Value.ExpiresAt == 0)
            {
                continue;
            }

            if (pair.Value.ExpiresAt <= now)
            {
                ((ICollection<KeyValuePair<byte[], Entry>>)_entries).Remove(pair);
            }
            else
            {
                volatileLeft = true;
            }
        }

        if (volatileLeft)
        {
            Volatile.Write(ref _mayHaveVolatileKeys, 1);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Error, "The key-value store's expiry sweep failed; it tries again at the next tick.")]
        public static partial void SweepFailed(ILogger logger, Exception exception);
    }

    /// <summary>An immutable value and its expiry, replaced whole on every write so updates are compare-and-swap.</summary>
    private sealed class Entry(byte[] value, long expiresAt)
    {
        public byte[] Value { get; } = value;

        public long ExpiresAt { get; } = expiresAt;
    }

    private sealed class ByteStringComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
    {
        public static readonly ByteStringComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj) => GetHashCode(obj.AsSpan());

        public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

        public int GetHashCode(ReadOnlySpan<byte> alternate)
        {
            var hash = default(HashCode);
            hash.AddBytes(alternate);
            return hash.ToHashCode();
        }

        public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
    }
}
