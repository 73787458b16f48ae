using System.Reflection;
using Transport.Hosting;
using Transport.Protocols.Greeting;
using Transport.Sockets;
using Transport.Udp;

namespace Transport.Tests;

/// <summary>
/// The hand-written key lists (checked before binding, so a wrong type gets our message) cover every option, and
/// docs/configuration.md documents every one of them.
/// </summary>
public sealed class ConfigurationDocsTests
{
    public static TheoryData<Type, string[]> OptionTypes => new()
    {
        { typeof(SocketTransportOptions), [.. Sockets.Internal.SocketTransportOptionsValidator.Schema.Keys] },
        { typeof(UdpTransportOptions), [.. Udp.Internal.UdpTransportOptionsValidator.Schema.Keys] },
        { typeof(ConnectionRegistryOptions), [.. Hosting.Internal.ConnectionRegistryOptionsValidator.Schema.Keys] },
        { typeof(TransportServerOptions), [.. Hosting.Internal.TransportServerOptionsValidator.Schema.Keys] },
        { typeof(GreetingOptions), [.. Protocols.Greeting.Internal.GreetingOptionsValidator.Schema.Keys] },
    };

    [Theory, MemberData(nameof(OptionTypes))]
    public void SchemaKnowsEveryBindableProperty_AndTheDocsListEachOne(Type options, string[] schemaKeys)
    {
        string docs = File.ReadAllText(Path.Combine(ExampleProcess.RepoRoot, "docs", "configuration.md"));
        string[] properties = [.. options.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite || p.PropertyType.IsGenericType)
            .Select(p => p.Name)
            .Order()];

        Assert.Equal(properties, schemaKeys.Order());
        Assert.All(properties, p => Assert.Contains($"| `{p}", docs, StringComparison.Ordinal));
    }
}
