using System.Collections;

namespace Transport.Hosting.Internal;

/// <summary>
/// The logging scope of one connection: <c>ConnectionId</c> (as Kestrel names it) and <c>Endpoint</c>, so a protocol's
/// own log lines say which connection and endpoint they are about.
/// </summary>
internal sealed class ConnectionLogScope(string connectionId, string endpoint) : IReadOnlyList<KeyValuePair<string, object>>
{
    private string? _text;

    public int Count => 2;

    public KeyValuePair<string, object> this[int index] => index switch
    {
        0 => new KeyValuePair<string, object>("ConnectionId", connectionId),
        1 => new KeyValuePair<string, object>("Endpoint", endpoint),
        _ => throw new ArgumentOutOfRangeException(nameof(index)),
    };

    public IEnumerator<KeyValuePair<string, object>> GetEnumerator()
    {
        yield return this[0];
        yield return this[1];
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => _text ??= $"ConnectionId:{connectionId} Endpoint:{endpoint}";
}
