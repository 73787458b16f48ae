using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Transport.Hosting;
using Transport.Protocols.Echo;

namespace Transport.Tests;

/// <summary>A host configured as appsettings.json would (the <c>Transport</c> section), serving <c>echo</c>.</summary>
internal static class ConfiguredHost
{
    public static IHost Build(Dictionary<string, string?> settings, Action<IServiceCollection, ITransportBuilder>? configure = null)
    {
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(settings);
        ITransportBuilder transport = builder.Services.AddTransport(builder.Configuration.GetSection("Transport")).AddProtocol<EchoProtocol>("echo");
        configure?.Invoke(builder.Services, transport);
        return builder.Build();
    }

    /// <summary>Starts the host and returns the validation failure it must stop with.</summary>
    public static async Task<OptionsValidationException> StartFailsAsync(Dictionary<string, string?> settings, Action<IServiceCollection, ITransportBuilder>? configure = null)
    {
        using IHost host = Build(settings, configure);
        return await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync()).DefaultTimeout();
    }
}
