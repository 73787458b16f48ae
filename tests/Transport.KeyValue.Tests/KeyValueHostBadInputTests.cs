using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Transport.KeyValue.Tests;

/// <summary>examples/KeyValueHost fed garbage by many clients, as an operator would see it in the log.</summary>
public sealed class KeyValueHostBadInputTests
{
    [Fact]
    public async Task ThousandGarbageConnections_OneDebugLineEach_NoWarningErrorOrStackTrace()
    {
        const int Connections = 1000;
        string directory = KeyValueServer.NewTempDirectory();
        Directory.CreateDirectory(directory);
        await using ExampleProcess host = ExampleProcess.Start("KeyValueHost",
            "--Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:unix:Url=unix:" + Path.Combine(directory, "kv.sock"),
            "--Logging:LogLevel:Transport=Debug");
        try
        {
            Match tcp = await host.WaitForLineAsync(@"Listening on tcp://127\.0\.0\.1:(\d+) \(endpoint 'tcp', protocol 'kv'\)");
            var server = new IPEndPoint(IPAddress.Loopback, int.Parse(tcp.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
            byte[][] garbage = ["*abc\r\n"u8.ToArray(), "*1\r\n$3\r\nPINGPONG\r\n"u8.ToArray(), "set \"unbalanced\r\n"u8.ToArray(), "*2\r\n$3\r\nGET\r\n$5\r\nab"u8.ToArray()];

            for (int batch = 0; batch < Connections; batch += 50)
            {
                await Task.WhenAll(Enumerable.Range(batch, 50).Select(async i =>
                {
                    using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    await socket.ConnectAsync(server).DefaultTimeout();
                    await socket.SendAsync(garbage[i % garbage.Length]).DefaultTimeout();
                    if (i % garbage.Length == 3)
                    {
                        // Half-closed in the middle of a request.
                        socket.Shutdown(SocketShutdown.Send);
                    }

                    var reply = new byte[256];
                    Assert.True(await socket.ReceiveAsync(reply).DefaultTimeout() > 0);
                }));
            }

            await TestTimeouts.UntilAsync(() => host.Output.Count(l => l.Contains("the client broke protocol 'kv'", StringComparison.Ordinal)) == Connections);

            IReadOnlyList<string> output = host.Output;
            Assert.All(output.Where(l => l.Contains("the client broke protocol", StringComparison.Ordinal)), l => Assert.StartsWith("dbug: ", l, StringComparison.Ordinal));
            Assert.DoesNotContain(output, l => l.StartsWith("warn:", StringComparison.Ordinal) || l.StartsWith("fail:", StringComparison.Ordinal) || l.StartsWith("crit:", StringComparison.Ordinal));
            Assert.DoesNotContain(output, l => l.Contains("InvalidFrameException", StringComparison.Ordinal) || l.Contains(" at Transport.", StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
