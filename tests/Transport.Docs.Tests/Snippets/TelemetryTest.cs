#region docs:telemetry-test
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Transport.Testing;
using Xunit;
#endregion

internal static class TelemetryTest
{
    public static async Task ConnectionEndsWithInvalidInputAsync()
    {
        #region docs:telemetry-test
        await using TransportTestServer server = await TransportTestServer.StartAsync<MyProtocol>(TestTransport.Tcp);
        using var ended = new MetricCollector<double>(server.Services.GetRequiredService<IMeterFactory>(),
            "Transport", "transport.connection.duration");
        // … drive a connection to its end …
        await ended.WaitForMeasurementsAsync(1).DefaultTimeout();
        Assert.Equal("invalid_input", ended.LastMeasurement!.Tags["error.type"]);
        #endregion
    }

    private sealed class MyProtocol : Microsoft.AspNetCore.Connections.ConnectionHandler
    {
        public override Task OnConnectedAsync(Microsoft.AspNetCore.Connections.ConnectionContext connection) => Task.CompletedTask;
    }
}
