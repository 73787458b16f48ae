#region docs:readme-client
using Microsoft.AspNetCore.Connections;
#endregion

internal static class ReadmeClient
{
    public static async Task<ConnectionContext> ConnectAsync(Transport.Hosting.TransportConnectionFactory factory)
    {
        #region docs:readme-client
        ConnectionContext connection = await factory.ConnectAsync("unix:/tmp/transport/echo.sock");
        #endregion
        return connection;
    }
}
