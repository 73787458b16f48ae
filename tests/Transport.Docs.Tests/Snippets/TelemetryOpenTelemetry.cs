#region docs:telemetry-opentelemetry
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
#endregion

internal static class TelemetryOpenTelemetry
{
    public static void Register(Microsoft.Extensions.Hosting.HostApplicationBuilder builder)
    {
        #region docs:telemetry-opentelemetry
        builder.Services.AddOpenTelemetry()
            .WithMetrics(metrics => metrics.AddMeter("Transport").AddConsoleExporter())
            .WithTracing(tracing => tracing.AddSource("Transport").AddConsoleExporter());
        #endregion
    }
}
