#region docs:aspnetcore-memory-client
using Transport.AspNetCore;
#endregion

internal static class AspNetCoreMemoryTest
{
    public static async Task<string> RunAsync()
    {
        #region docs:aspnetcore-memory-client
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTransport().ConfigureKestrel(k => k.ListenMemory("app"));
        await using WebApplication app = builder.Build();
        app.MapGet("/", () => "hello");
        await app.StartAsync();

        using HttpClient client = app.Services.CreateTransportHttpClient("memory://app");
        string body = await client.GetStringAsync("/");
        #endregion
        return body;
    }
}
