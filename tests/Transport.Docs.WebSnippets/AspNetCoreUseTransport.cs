internal static class AspNetCoreUseTransport
{
    // The page shows these statements as a `dotnet new web` app's Program.cs.
    public static void Run(string[] args)
    {
        #region docs:aspnetcore-use-transport
        WebApplicationBuilder builder = WebApplication.CreateBuilder(args);
        builder.WebHost.UseTransport();                 // Kestrel's TCP and Unix endpoints now run on Transport
        WebApplication app = builder.Build();
        app.MapGet("/", () => "hello");
        app.Run();
        #endregion
    }
}
