namespace Transport.Hosting.Internal;

/// <summary>A protocol name and the handler type registered for it.</summary>
internal sealed record ProtocolRegistration(string Name, Type HandlerType);

/// <summary>
/// The configuration section the options were bound from (null when set in code), and its path for error messages.
/// </summary>
internal sealed record TransportConfigurationPath(string Path, Microsoft.Extensions.Configuration.IConfiguration? Section = null);
