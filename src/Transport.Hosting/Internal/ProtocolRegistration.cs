namespace Transport.Hosting.Internal;

/// <summary>A protocol name and the handler type registered for it.</summary>
internal sealed record ProtocolRegistration(string Name, Type HandlerType);

/// <summary>The configuration path the options were bound from, for error messages.</summary>
internal sealed record TransportConfigurationPath(string Path);
