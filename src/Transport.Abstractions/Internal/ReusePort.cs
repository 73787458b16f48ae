using System.Net.Sockets;

namespace Transport.Internal;

/// <summary>SO_REUSEPORT, set explicitly: .NET's ReuseAddress also sets it on Linux, but says nothing about the intent.</summary>
internal static class ReusePort
{
    private const int SolSocket = 1;
    private const int SoReusePort = 15;

    /// <summary>Sets SO_REUSEPORT on a socket that is not bound yet.</summary>
    /// <exception cref="PlatformNotSupportedException">Not on Linux (the validator says so first, naming the key).</exception>
    public static void Enable(Socket socket)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("ReusePort (SO_REUSEPORT) is supported on Linux only.");
        }

        socket.SetRawSocketOption(SolSocket, SoReusePort, BitConverter.GetBytes(1));
    }
}
