using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Transport.Framing;
using Transport.Protocols.KeyValue.Internal;

namespace Transport.Protocols.KeyValue;

/// <summary>
/// A key-value server speaking RESP2, the Redis protocol, so <c>redis-cli</c>, <c>redis-benchmark</c> and Redis
/// client libraries can use it. One in-process store serves every endpoint and connection this instance
/// handles. Register it with <c>AddProtocol&lt;KeyValueProtocol&gt;("kv")</c>.
/// </summary>
/// <remarks>
/// <para>
/// Commands: PING, ECHO, GET, SET (EX, PX, EXAT, PXAT, KEEPTTL, NX, XX, GET), DEL, EXISTS, INCR, DECR, INCRBY,
/// DECRBY, MGET, MSET, EXPIRE, PEXPIRE, TTL, PTTL, DBSIZE, FLUSHDB, FLUSHALL, SELECT 0, COMMAND (COUNT, DOCS,
/// INFO: enough for redis-cli), CONFIG GET (enough for redis-benchmark), CLIENT ID/INFO/LIST/SETNAME/GETNAME/SETINFO (Redis's fields: the client's
/// address is the connection's <c>RemoteEndPoint</c>, the real client's behind a PROXY-protocol balancer), HELLO 2,
/// INFO, QUIT. Any other command gets Redis's "unknown command" error and the connection carries on.
/// </para>
/// <para>
/// Pub/sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE (glob patterns), PUNSUBSCRIBE, PUBLISH (answers the receiver count),
/// PUBSUB CHANNELS/NUMSUB/NUMPAT, and PING and RESET in subscribed mode, with RESP2's reply shapes, across every
/// endpoint and transport this instance serves. It runs on the host's <see cref="ConnectionRegistry"/>: a subscriber
/// whose queued messages pass <see cref="KeyValueProtocolOptions.PubSubOutputLimit"/> is disconnected, like Redis's
/// <c>client-output-buffer-limit pubsub</c>.
/// </para>
/// <para>
/// Requests may be multibulk (what clients send) or inline (what a person types); pipelined requests are answered
/// in order with one flush per batch. A protocol error (malformed array, bulk length mismatch, unbalanced quotes,
/// a bulk string over <see cref="KeyValueProtocolOptions.MaxRequestSize"/>) gets <c>-ERR Protocol error: …</c> and
/// the connection is closed, as Redis does.
/// </para>
/// </remarks>
public sealed class KeyValueProtocol : FramedProtocol<RespCommand, KeyValueSession>, IDisposable
{
    private readonly KeyValueStore _store;
    private readonly int _maxRequestSize;
    private readonly int _pubSubOutputLimit;
    private readonly ConnectionRegistry _registry;
    private readonly PubSub _pubSub = new();
    private readonly Clients _clients;

    /// <summary>Creates the protocol and its store.</summary>
    /// <param name="options">Limits; the defaults when null (or not registered in the service provider).</param>
    /// <param name="timeProvider">The clock for expiry; <see cref="TimeProvider.System"/> when null.</param>
    /// <param name="registry">
    /// The host's connection registry, for pub/sub; when null (hosted without the Transport engine), the protocol
    /// registers its connections in a registry of its own.
    /// </param>
    /// <param name="logger">Where the store's expiry sweep reports a fault of its own; nothing is logged when null.</param>
    public KeyValueProtocol(KeyValueProtocolOptions? options = null, TimeProvider? timeProvider = null, ConnectionRegistry? registry = null,
        ILogger<KeyValueProtocol>? logger = null)
    {
        options ??= new KeyValueProtocolOptions();
        new KeyValueProtocolOptionsValidator(nameof(KeyValueProtocolOptions), null).ThrowIfInvalid(options);
        _maxRequestSize = options.MaxRequestSize;
        _pubSubOutputLimit = options.PubSubOutputLimit;
        _registry = registry ?? new ConnectionRegistry();
        _store = new KeyValueStore(timeProvider ?? TimeProvider.System, logger ?? (ILogger)NullLogger.Instance);
        _clients = new Clients(timeProvider ?? TimeProvider.System);
    }

    /// <summary>Stops the store's expiry sweep.</summary>
    public void Dispose() => _store.Dispose();

    /// <inheritdoc />
    protected override IMessageFramer<RespCommand> CreateFramer(ConnectionContext connection) => new RespRequestFramer(_maxRequestSize);

    /// <inheritdoc />
    protected override KeyValueSession CreateState(ConnectionContext connection) => new(connection);

    /// <inheritdoc />
    protected override ValueTask OnConnectionStartedAsync(ConnectionContext connection, KeyValueSession state)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(state);
        state.Registration = connection.Features.Get<RegisteredConnection>();
        if (state.Registration is null)
        {
            state.Registration = state.OwnRegistration = _registry.Register(connection, "kv");
        }

        _clients.Add(state);

        return default;
    }

    /// <inheritdoc />
    protected override ValueTask OnMessageAsync(ConnectionContext connection, KeyValueSession state, RespCommand message)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(state);
        if (message.Count > 0)
        {
            Execute(connection, state, message, connection.Transport.Output);
        }

        return default;
    }

    /// <inheritdoc />
    protected override async ValueTask OnConnectionEndedAsync(ConnectionContext connection, KeyValueSession state, Exception? failure)
    {
        ArgumentNullException.ThrowIfNull(state);
        _clients.Remove(state);
        _pubSub.UnsubscribeAll(state);
        if (state.OwnRegistration is { } own)
        {
            await own.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    protected override ValueTask OnInvalidFrameAsync(ConnectionContext connection, InvalidFrameException exception)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(exception);
        string message = exception.Message.StartsWith("Protocol error", StringComparison.Ordinal)
            ? exception.Message
            : "Protocol error: " + exception.Message;
        RespWriter.Error(connection.Transport.Output, "ERR " + message);
        return default;
    }

    private void Execute(ConnectionContext connection, KeyValueSession session, RespCommand command, PipeWriter output)
    {
        ReadOnlySpan<byte> name = command[0];
        _clients.Touch(session, command);
        if (session.Subscriptions > 0 && ExecuteSubscribed(command, output))
        {
            return;
        }

        switch (name.Length)
        {
            case 3 when Is(name, "GET"u8):
                if (Arity(command, output, 2, "get"))
                {
                    Get(command, output);
                }

                return;
            case 3 when Is(name, "SET"u8):
                if (Arity(command, output, -3, "set"))
                {
                    Set(command, output);
                }

                return;
            case 3 when Is(name, "DEL"u8):
                if (Arity(command, output, -2, "del"))
                {
                    RespWriter.Integer(output, CountKeys(command, remove: true));
                }

                return;
            case 3 when Is(name, "TTL"u8):
            case 4 when Is(name, "PTTL"u8):
                if (Arity(command, output, 2, name.Length == 3 ? "ttl" : "pttl"))
                {
                    long ttl = _store.TimeToLive(command[1]);
                    RespWriter.Integer(output, ttl < 0 || name.Length == 4 ? ttl : (ttl + 500) / 1000);
                }

                return;
            case 4 when Is(name, "PING"u8):
                if (Arity(command, output, -1, "ping"))
                {
                    switch (command.Count)
                    {
                        case 1: RespWriter.Raw(output, RespWriter.Pong); break;
                        case 2: RespWriter.Bulk(output, command[1]); break;
                        default: RespWriter.Error(output, "ERR wrong number of arguments for 'ping' command"); break;
                    }
                }

                return;
            case 4 when Is(name, "ECHO"u8):
                if (Arity(command, output, 2, "echo"))
                {
                    RespWriter.Bulk(output, command[1]);
                }

                return;
            case 4 when Is(name, "INCR"u8):
            case 4 when Is(name, "DECR"u8):
                if (Arity(command, output, 2, Is(name, "INCR"u8) ? "incr" : "decr"))
                {
                    Increment(command[1], Is(name, "INCR"u8) ? 1 : -1, output);
                }

                return;
            case 4 when Is(name, "MGET"u8):
                if (Arity(command, output, -2, "mget"))
                {
                    RespWriter.ArrayHeader(output, command.Count - 1);
                    for (int i = 1; i < command.Count; i++)
                    {
                        WriteValue(output, command[i]);
                    }
                }

                return;
            case 4 when Is(name, "MSET"u8):
                if (Arity(command, output, -3, "mset"))
                {
                    if (command.Count % 2 == 0)
                    {
                        RespWriter.Error(output, "ERR wrong number of arguments for 'mset' command");
                        return;
                    }

                    for (int i = 1; i < command.Count; i += 2)
                    {
                        _store.Set(command[i], command[i + 1], KeyValueStore.SetCondition.Always, 0, keepTtl: false, out _);
                    }

                    RespWriter.Raw(output, RespWriter.Ok);
                }

                return;
            case 4 when Is(name, "INFO"u8):
                RespWriter.Bulk(output, "# Server\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\nserver_name:transport-kv\r\n"u8);
                return;
            case 4 when Is(name, "QUIT"u8):
                RespWriter.Raw(output, RespWriter.Ok);
                connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.RequestClose();
                return;
            case 5 when Is(name, "HELLO"u8):
                Hello(session, command, output);
                return;
            case 5 when Is(name, "RESET"u8):
                _pubSub.UnsubscribeAll(session);
                RespWriter.Raw(output, "+RESET\r\n"u8);
                return;
            case 6 when Is(name, "PUBSUB"u8):
                if (Arity(command, output, -2, "pubsub"))
                {
                    _pubSub.Introspect(command, output);
                }

                return;
            case 7 when Is(name, "PUBLISH"u8):
                if (Arity(command, output, 3, "publish"))
                {
                    RespWriter.Integer(output, _pubSub.Publish(session, command[1], command[2]));
                }

                return;
            case 9 when Is(name, "SUBSCRIBE"u8):
            case 10 when Is(name, "PSUBSCRIBE"u8):
                if (Arity(command, output, -2, name.Length == 9 ? "subscribe" : "psubscribe"))
                {
                    _pubSub.Subscribe(session, command, output, patterns: name.Length == 10, _pubSubOutputLimit);
                }

                return;
            case 11 when Is(name, "UNSUBSCRIBE"u8):
            case 12 when Is(name, "PUNSUBSCRIBE"u8):
                _pubSub.Unsubscribe(session, command, output, patterns: name.Length == 12);
                return;
            case 6 when Is(name, "EXISTS"u8):
                if (Arity(command, output, -2, "exists"))
                {
                    RespWriter.Integer(output, CountKeys(command, remove: false));
                }

                return;
            case 6 when Is(name, "INCRBY"u8):
            case 6 when Is(name, "DECRBY"u8):
                if (Arity(command, output, 3, Is(name, "INCRBY"u8) ? "incrby" : "decrby"))
                {
                    if (!RespNumbers.TryParseInt64(command[2], out long delta) || (delta == long.MinValue && Is(name, "DECRBY"u8)))
                    {
                        RespWriter.Error(output, "ERR value is not an integer or out of range");
                        return;
                    }

                    Increment(command[1], Is(name, "INCRBY"u8) ? delta : -delta, output);
                }

                return;
            case 6 when Is(name, "EXPIRE"u8):
            case 7 when Is(name, "PEXPIRE"u8):
                if (Arity(command, output, 3, name.Length == 6 ? "expire" : "pexpire"))
                {
                    if (!RespNumbers.TryParseInt64(command[2], out long amount))
                    {
                        RespWriter.Error(output, "ERR value is not an integer or out of range");
                        return;
                    }

                    long milliseconds = name.Length == 6 ? SafeMultiply(amount, 1000) : amount;
                    if (milliseconds <= 0)
                    {
                        // A past expiry deletes the key, as in Redis.
                        RespWriter.Integer(output, _store.Remove(command[1]) ? 1 : 0);
                        return;
                    }

                    RespWriter.Integer(output, _store.Expire(command[1], SafeAdd(_store.Now, milliseconds)) ? 1 : 0);
                }

                return;
            case 6 when Is(name, "DBSIZE"u8):
                RespWriter.Integer(output, _store.Count);
                return;
            case 6 when Is(name, "SELECT"u8):
                if (Arity(command, output, 2, "select"))
                {
                    if (command[1].SequenceEqual("0"u8))
                    {
                        RespWriter.Raw(output, RespWriter.Ok);
                    }
                    else
                    {
                        RespWriter.Error(output, "ERR DB index is out of range");
                    }
                }

                return;
            case 6 when Is(name, "CONFIG"u8):
                Config(command, output);
                return;
            case 6 when Is(name, "CLIENT"u8):
                if (Arity(command, output, -2, "client"))
                {
                    _clients.Execute(session, command, output);
                }

                return;
            case 7 when Is(name, "FLUSHDB"u8):
            case 8 when Is(name, "FLUSHALL"u8):
                _store.Clear();
                RespWriter.Raw(output, RespWriter.Ok);
                return;
            case 7 when Is(name, "COMMAND"u8):
                Command(command, output);
                return;
            default:
                UnknownCommand(command, output);
                return;
        }
    }

    /// <summary>
    /// Subscribed mode (RESP2): the pub/sub commands, QUIT and RESET run as usual (false), PING answers as a push
    /// (true), anything else is refused (true).
    /// </summary>
    private static bool ExecuteSubscribed(RespCommand command, PipeWriter output)
    {
        ReadOnlySpan<byte> name = command[0];
        if (Is(name, "PING"u8))
        {
            if (command.Count > 2)
            {
                RespWriter.Error(output, "ERR wrong number of arguments for 'ping' command");
                return true;
            }

            RespWriter.ArrayHeader(output, 2);
            RespWriter.Bulk(output, "pong"u8);
            RespWriter.Bulk(output, command.Count == 2 ? command[1] : ""u8);
            return true;
        }

        if (Is(name, "SUBSCRIBE"u8) || Is(name, "PSUBSCRIBE"u8) || Is(name, "UNSUBSCRIBE"u8) || Is(name, "PUNSUBSCRIBE"u8)
            || Is(name, "QUIT"u8) || Is(name, "RESET"u8))
        {
            return false;
        }

        RespWriter.Error(output, $"ERR Can't execute '{Printable(name).ToLowerInvariant()}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context");
        return true;
    }

    private void Get(RespCommand command, PipeWriter output) => WriteValue(output, command[1]);

    private void WriteValue(PipeWriter output, ReadOnlySpan<byte> key)
    {
        if (_store.TryGet(key, out byte[] value))
        {
            RespWriter.Bulk(output, value);
        }
        else
        {
            RespWriter.Raw(output, RespWriter.NullBulk);
        }
    }

    private void Set(RespCommand command, PipeWriter output)
    {
        var condition = KeyValueStore.SetCondition.Always;
        bool returnPrevious = false;
        bool keepTtl = false;
        bool hasExpiry = false;
        long expiresAt = 0;
        for (int i = 3; i < command.Count; i++)
        {
            ReadOnlySpan<byte> option = command[i];
            if (Is(option, "NX"u8) && condition == KeyValueStore.SetCondition.Always)
            {
                condition = KeyValueStore.SetCondition.IfMissing;
            }
            else if (Is(option, "XX"u8) && condition == KeyValueStore.SetCondition.Always)
            {
                condition = KeyValueStore.SetCondition.IfExists;
            }
            else if (Is(option, "GET"u8))
            {
                returnPrevious = true;
            }
            else if (Is(option, "KEEPTTL"u8) && !hasExpiry)
            {
                keepTtl = hasExpiry = true;
            }
            else if ((Is(option, "EX"u8) || Is(option, "PX"u8) || Is(option, "EXAT"u8) || Is(option, "PXAT"u8)) && !hasExpiry && i + 1 < command.Count)
            {
                hasExpiry = true;
                if (!RespNumbers.TryParseInt64(command[++i], out long amount))
                {
                    RespWriter.Error(output, "ERR value is not an integer or out of range");
                    return;
                }

                bool seconds = option[0] is (byte)'E' or (byte)'e';
                long milliseconds = seconds ? SafeMultiply(amount, 1000) : amount;
                if (amount <= 0 || milliseconds == long.MaxValue)
                {
                    RespWriter.Error(output, "ERR invalid expire time in 'set' command");
                    return;
                }

                expiresAt = option.Length == 4
                    ? SafeAdd(_store.Now, milliseconds - DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())
                    : SafeAdd(_store.Now, milliseconds);
                expiresAt = Math.Max(expiresAt, 1);
            }
            else
            {
                RespWriter.Error(output, "ERR syntax error");
                return;
            }
        }

        bool stored = _store.Set(command[1], command[2], condition, expiresAt, keepTtl, out byte[]? previous);
        if (returnPrevious)
        {
            if (previous is null)
            {
                RespWriter.Raw(output, RespWriter.NullBulk);
            }
            else
            {
                RespWriter.Bulk(output, previous);
            }
        }
        else
        {
            RespWriter.Raw(output, stored ? RespWriter.Ok : RespWriter.NullBulk);
        }
    }

    private void Increment(ReadOnlySpan<byte> key, long delta, PipeWriter output)
    {
        string? error = _store.Increment(key, delta, out long result);
        if (error is null)
        {
            RespWriter.Integer(output, result);
        }
        else
        {
            RespWriter.Error(output, error);
        }
    }

    private static void Command(RespCommand command, PipeWriter output)
    {
        if (command.Count == 1)
        {
            RespWriter.Raw(output, RespWriter.EmptyArray);
        }
        else if (Is(command[1], "COUNT"u8))
        {
            RespWriter.Integer(output, CommandNames.All.Length);
        }
        else if (Is(command[1], "DOCS"u8))
        {
            // redis-cli asks for docs to show hints; no docs means no hints, and it carries on.
            RespWriter.Raw(output, RespWriter.EmptyArray);
        }
        else if (Is(command[1], "INFO"u8))
        {
            RespWriter.ArrayHeader(output, command.Count - 2);
            for (int i = 2; i < command.Count; i++)
            {
                RespWriter.Raw(output, RespWriter.NullBulk);
            }
        }
        else
        {
            RespWriter.Error(output, $"ERR unknown subcommand '{Printable(command[1])}'. Try COMMAND HELP.");
        }
    }

    private static void Config(RespCommand command, PipeWriter output)
    {
        if (command.Count < 2 || !Is(command[1], "GET"u8))
        {
            RespWriter.Error(output, command.Count < 2
                ? "ERR wrong number of arguments for 'config' command"
                : $"ERR unknown subcommand '{Printable(command[1])}'. Try CONFIG HELP.");
            return;
        }

        // redis-benchmark reads these two; nothing is persisted here.
        bool save = false;
        bool appendOnly = false;
        for (int i = 2; i < command.Count; i++)
        {
            save |= Is(command[i], "save"u8) || command[i].SequenceEqual("*"u8);
            appendOnly |= Is(command[i], "appendonly"u8) || command[i].SequenceEqual("*"u8);
        }

        RespWriter.ArrayHeader(output, (save ? 2 : 0) + (appendOnly ? 2 : 0));
        if (save)
        {
            RespWriter.Bulk(output, "save"u8);
            RespWriter.Bulk(output, ""u8);
        }

        if (appendOnly)
        {
            RespWriter.Bulk(output, "appendonly"u8);
            RespWriter.Bulk(output, "no"u8);
        }
    }

    private static void Hello(KeyValueSession session, RespCommand command, PipeWriter output)
    {
        if (command.Count >= 2 && !command[1].SequenceEqual("2"u8))
        {
            RespWriter.Error(output, "NOPROTO sorry, this protocol version is not supported.");
            return;
        }

        RespWriter.ArrayHeader(output, 14);
        RespWriter.Bulk(output, "server"u8);
        RespWriter.Bulk(output, "redis"u8);
        RespWriter.Bulk(output, "version"u8);
        RespWriter.Bulk(output, "7.0.0"u8);
        RespWriter.Bulk(output, "proto"u8);
        RespWriter.Integer(output, 2);
        RespWriter.Bulk(output, "id"u8);
        RespWriter.Integer(output, session.Id);
        RespWriter.Bulk(output, "mode"u8);
        RespWriter.Bulk(output, "standalone"u8);
        RespWriter.Bulk(output, "role"u8);
        RespWriter.Bulk(output, "master"u8);
        RespWriter.Bulk(output, "modules"u8);
        RespWriter.Raw(output, RespWriter.EmptyArray);
    }

    private static void UnknownCommand(RespCommand command, PipeWriter output)
    {
        var message = new StringBuilder("ERR unknown command '").Append(Printable(command[0])).Append("', with args beginning with: ");
        for (int i = 1; i < command.Count && message.Length < 128; i++)
        {
            message.Append('\'').Append(Printable(command[i])).Append("' ");
        }

        RespWriter.Error(output, message.ToString());
    }

    /// <summary>DEL and EXISTS: how many of the command's keys were there (and, for DEL, are now removed).</summary>
    private long CountKeys(RespCommand command, bool remove)
    {
        long count = 0;
        for (int i = 1; i < command.Count; i++)
        {
            count += (remove ? _store.Remove(command[i]) : _store.Exists(command[i])) ? 1 : 0;
        }

        return count;
    }

    /// <summary>Checks the argument count like Redis: <paramref name="arity"/> exact, or at least -arity when negative.</summary>
    private static bool Arity(RespCommand command, PipeWriter output, int arity, string name)
    {
        if (arity > 0 ? command.Count == arity : command.Count >= -arity)
        {
            return true;
        }

        RespWriter.Error(output, $"ERR wrong number of arguments for '{name}' command");
        return false;
    }

    private static bool Is(ReadOnlySpan<byte> value, ReadOnlySpan<byte> upperCase) => Ascii.EqualsIgnoreCase(value, upperCase);

    private static string Printable(ReadOnlySpan<byte> bytes)
    {
        string text = Encoding.UTF8.GetString(bytes[..Math.Min(bytes.Length, 128)]);
        return text.Replace('\r', ' ').Replace('\n', ' ');
    }

    private static long SafeMultiply(long value, long factor) =>
        value > long.MaxValue / factor || value < long.MinValue / factor ? long.MaxValue : value * factor;

    private static long SafeAdd(long a, long b) => b > 0 && a > long.MaxValue - b ? long.MaxValue : a + b;
}
