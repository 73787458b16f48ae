#region docs:chat-registration
using Microsoft.Extensions.DependencyInjection;
using Transport.Hosting;
#endregion

internal static class ChatRegistration
{
    public static void Register(Microsoft.Extensions.Hosting.HostApplicationBuilder builder)
    {
        #region docs:chat-registration
        builder.Services.AddSingleton<ChatRooms>();                 // shared by every connection
        builder.Services.AddTransport(builder.Configuration.GetSection("Transport"))
            .AddProtocol<ChatProtocol>("chat");                     // ChatProtocol(ChatRooms rooms): injected
        #endregion
    }
}
