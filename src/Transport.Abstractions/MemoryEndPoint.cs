using System.Net;

namespace Transport;

/// <summary>
/// The address of an in-process listener of the memory transport (<c>memory://name</c>).
/// </summary>
public sealed class MemoryEndPoint : EndPoint, IEquatable<MemoryEndPoint>
{
    /// <summary>Creates an endpoint for the listener called <paramref name="name"/>.</summary>
    /// <param name="name">The listener's name; compared case-insensitively.</param>
    public MemoryEndPoint(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
    }

    /// <summary>The listener's name.</summary>
    public string Name { get; }

    /// <inheritdoc />
    public bool Equals(MemoryEndPoint? other) =>
        other is not null && string.Equals(Name, other.Name, StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as MemoryEndPoint);

    /// <inheritdoc />
    public override int GetHashCode() => StringComparer.OrdinalIgnoreCase.GetHashCode(Name);

    /// <inheritdoc />
    public override string ToString() => "memory://" + Name;
}
