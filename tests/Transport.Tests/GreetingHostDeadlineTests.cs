using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Transport.Tests;

/// <summary>examples/GreetingHost on the real clock: request and keep-alive deadlines hold for hundreds of connections at once.</summary>
public sealed class GreetingHostDeadlineTests
{
    [Fact]
    public async Task HundredsOfSlowAndIdleConnections_AreAllAnsweredAndClosed_AtTheirDeadlines()
    {
        string directory = EchoServer.NewTempDirectory();
        Directory.CreateDirectory(directory);
        await using ExampleProcess host = ExampleProcess.Start("GreetingHost",
            "--Transport:Endpoints:http:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:unix:Url=unix:" + Path.Combine(directory, "greeting.sock"),
            "--Transport:Endpoints:https:Url=tcp://127.0.0.1:0",
            "--DevCertificate:Directory=" + Path.Combine(directory, "dev-certs"),
            "--Greeting:RequestHeadersTimeout=00:00:02",
            "--Greeting:KeepAliveTimeout=00:00:01");
        Match http = await host.WaitForLineAsync(@"^Waiting for connection on http://127\.0\.0\.1:(\d+) …$");
        var server = new IPEndPoint(IPAddress.Loopback, int.Parse(http.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        var sockets = new List<Socket>();
        try
        {
            // 300 that never finish their head (each must get 408) and 300 idle after one keep-alive request (each must be closed).
            Task<string>[] slow = await StartManyAsync(sockets, server, 300, async s =>
            {
                await s.SendAsync("GET / HTTP/1.1\r\nHost: a\r\nX-Unfinished"u8.ToArray());
                return await ReceiveToEndAsync(s);
            });
            Task<string>[] idle = await StartManyAsync(sockets, server, 300, async s =>
            {
                await s.SendAsync("GET / HTTP/1.1\r\nHost: a\r\n\r\n"u8.ToArray());
                return await ReceiveToEndAsync(s);
            });

            // One second per connection (the defect) would take minutes; the bound is the test timeout.
            string[] slowAnswers = await Task.WhenAll(slow).DefaultTimeout();
            string[] idleAnswers = await Task.WhenAll(idle).DefaultTimeout();

            Assert.All(slowAnswers, a => Assert.StartsWith("HTTP/1.0 408 Request Timeout\r\n", a, StringComparison.Ordinal));
            Assert.All(idleAnswers, a =>
            {
                Assert.StartsWith("HTTP/1.0 200 OK\r\n", a, StringComparison.Ordinal);
                Assert.Single(Regex.Matches(a, "^HTTP/1.0 ", RegexOptions.Multiline));
            });
        }
        finally
        {
            foreach (Socket socket in sockets)
            {
                socket.Dispose();
            }

            Directory.Delete(directory, recursive: true);
        }
    }

    private static async Task<Task<string>[]> StartManyAsync(List<Socket> sockets, IPEndPoint server, int count, Func<Socket, Task<string>> talk)
    {
        var talks = new List<Task<string>>(count);
        for (int i = 0; i < count; i++)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            sockets.Add(socket);
            await socket.ConnectAsync(server).DefaultTimeout();
            talks.Add(talk(socket));
        }

        return [.. talks];
    }

    private static async Task<string> ReceiveToEndAsync(Socket socket)
    {
        var received = new MemoryStream();
        var buffer = new byte[4096];
        int n;
        while ((n = await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None).AsTask().DefaultTimeout()) > 0)
        {
            received.Write(buffer, 0, n);
        }

        return Encoding.ASCII.GetString(received.ToArray());
    }
}
