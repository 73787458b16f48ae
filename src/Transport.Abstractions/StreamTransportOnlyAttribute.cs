namespace Transport;

/// <summary>
/// Marks a protocol that needs a byte stream (TCP, Unix socket, in-memory) and cannot run over datagrams.
/// The host refuses, at start, to bind such a protocol to a <c>udp://</c> endpoint.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = true, AllowMultiple = false)]
public sealed class StreamTransportOnlyAttribute : Attribute
{
}
