namespace Transport.TestSupport;

/// <summary>
/// The log events tests wait for, by logger category and event id as their <c>[LoggerMessage]</c> declares them: an
/// id is what an operator's log pipeline matches on, and it does not change when a message is reworded.
/// </summary>
internal static class LogEvents
{
    /// <summary>The engine (<c>TransportLog</c>).</summary>
    public static class Hosting
    {
        public const string Category = "Transport.Hosting";
        public const int ConnectionClosed = 4;
        public const int ProtocolFailed = 6;
        public const int AcceptFailing = 11;
        public const int ClientBrokeProtocol = 30;
        public const int TelemetryFailed = 19;
    }

    /// <summary>The TCP and Unix socket transport (<c>SocketsLog</c>).</summary>
    public static class Sockets
    {
        public const string Category = "Transport.Sockets";
        public const int PeerClosed = 1;
        public const int AcceptFailing = 8;
        public const int IoThreadCallbackFailed = 13;
    }

    /// <summary>The UDP transport (<c>UdpLog</c>).</summary>
    public static class Udp
    {
        public const string Category = "Transport.Udp";
        public const int SessionIdle = 4;
        public const int ReceiveRecovered = 9;
    }

    /// <summary><c>TransportConnectionLog</c>, in the category of the transport that owns the connection.</summary>
    public const int CallbackFailed = 100;

    /// <summary><c>GreetingProtocol</c>: a bad request answered with an error status.</summary>
    public static class Greeting
    {
        public const string Category = "Transport.Protocols.Greeting.GreetingProtocol";
        public const int BadRequestAnswered = 1;
    }
}
