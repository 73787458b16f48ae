namespace Transport.Protocols.KeyValue;

/// <summary>
/// One RESP request: the command name and its arguments, as raw bytes. Arguments point into the connection's
/// receive buffer (or a per-connection scratch buffer) and are valid only while the command is being handled.
/// </summary>
public readonly struct RespCommand : IEquatable<RespCommand>
{
    private readonly ReadOnlyMemory<byte>[]? _arguments;

    internal RespCommand(ReadOnlyMemory<byte>[] arguments, int count)
    {
        _arguments = arguments;
        Count = count;
    }

    /// <summary>How many parts the request has, the command name included; 0 for an empty request.</summary>
    public int Count { get; }

    /// <summary>Part <paramref name="index"/>: 0 is the command name, then the arguments.</summary>
    /// <param name="index">0 to <see cref="Count"/> - 1.</param>
    /// <returns>The bytes of that part.</returns>
    public ReadOnlySpan<byte> this[int index] => GetMemory(index).Span;

    /// <summary>Part <paramref name="index"/> as memory.</summary>
    /// <param name="index">0 to <see cref="Count"/> - 1.</param>
    /// <returns>The bytes of that part.</returns>
    public ReadOnlyMemory<byte> GetMemory(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        return _arguments![index];
    }

    /// <inheritdoc />
    public bool Equals(RespCommand other) => ReferenceEquals(_arguments, other._arguments) && Count == other.Count;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is RespCommand other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(_arguments, Count);

    /// <summary>Whether two commands are the same view of the same buffer.</summary>
    /// <param name="left">A command.</param>
    /// <param name="right">Another.</param>
    /// <returns>Whether they are equal.</returns>
    public static bool operator ==(RespCommand left, RespCommand right) => left.Equals(right);

    /// <summary>Whether two commands are not the same view of the same buffer.</summary>
    /// <param name="left">A command.</param>
    /// <param name="right">Another.</param>
    /// <returns>Whether they differ.</returns>
    public static bool operator !=(RespCommand left, RespCommand right) => !left.Equals(right);
}
