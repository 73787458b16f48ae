using Microsoft.Extensions.DependencyInjection;

namespace Transport.Hosting;

/// <summary>
/// Returned by <c>AddTransport</c> to register protocols and endpoints.
/// </summary>
public interface ITransportBuilder
{
    /// <summary>The service collection the transport is registered in.</summary>
    IServiceCollection Services { get; }
}
