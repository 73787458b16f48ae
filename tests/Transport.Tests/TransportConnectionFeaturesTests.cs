using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Transport.Tests;

/// <summary>
/// The connection is its own feature collection (no dictionary per connection): what a layer sets is found, replaces
/// a standard feature or removes it, and enumeration shows exactly what Get finds.
/// </summary>
public sealed class TransportConnectionFeaturesTests
{
    [Fact]
    public void StandardFeatures_AreTheConnection()
    {
        var connection = new BareConnection();
        IFeatureCollection features = connection.Features;

        Assert.Same(connection, features.Get<IConnectionIdFeature>());
        Assert.Same(connection, features.Get<IConnectionLifetimeNotificationFeature>());
        Assert.Null(features.Get<ITlsHandshakeFeature>());
        Assert.False(features.IsReadOnly);
    }

    [Fact]
    public void SetFeature_IsFound_ReplacesOrRemovesAStandardOne_AndBumpsTheRevision()
    {
        var connection = new BareConnection();
        IFeatureCollection features = connection.Features;
        int revision = features.Revision;
        var custom = new CustomFeature();
        var items = new ItemsFeature();

        features.Set(custom);
        features.Set<IConnectionItemsFeature>(items);
        features.Set<IConnectionEndPointFeature>(null);

        Assert.Same(custom, features.Get<CustomFeature>());
        Assert.Same(custom, features[typeof(CustomFeature)]);
        Assert.Same(items, features.Get<IConnectionItemsFeature>());
        Assert.Null(features.Get<IConnectionEndPointFeature>());
        Assert.True(features.Revision > revision);

        features.Set<CustomFeature>(null);
        Assert.Null(features.Get<CustomFeature>());
    }

    [Fact]
    public void Enumeration_ListsWhatGetFinds_AndNothingRemoved()
    {
        var connection = new BareConnection();
        IFeatureCollection features = connection.Features;
        var custom = new CustomFeature();
        features.Set(custom);
        features.Set<IConnectionEndPointFeature>(null);

        Dictionary<Type, object> listed = features.ToDictionary(f => f.Key, f => f.Value);

        Assert.Same(custom, listed[typeof(CustomFeature)]);
        Assert.Same(connection, listed[typeof(IConnectionIdFeature)]);
        Assert.DoesNotContain(typeof(IConnectionEndPointFeature), listed.Keys);
        Assert.All(listed, f => Assert.Same(f.Value, features[f.Key]));
    }

    private sealed class CustomFeature;

    private sealed class ItemsFeature : IConnectionItemsFeature
    {
        public IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();
    }

    private sealed class BareConnection : TransportConnection
    {
        public override void Abort(ConnectionAbortedException abortReason)
        {
        }

        protected override ValueTask CloseTransportAsync() => ValueTask.CompletedTask;
    }
}
