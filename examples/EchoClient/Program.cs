using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Transport;
using Transport.Hosting;

// Usage: EchoClient URL [MESSAGE] [--timeout SECONDS]
// Streams (tcp://, unix:, memory://): sends MESSAGE (or standard input when no MESSAGE is given), closes its
// sending side, and prints everything the server sends back until the server closes.
// Datagrams (udp://): sends MESSAGE (or each line of standard input) as one datagram and prints the one
// datagram that comes back for each.
string? url = null;
string? message = null;
double timeoutSeconds = 30;
for (int i = 0; i < args.Length; i++)
{
    if (args[i] == "--timeout" && i + 1 < args.Length && double.TryParse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture, out double t))
    {
        timeoutSeconds = t;
        i++;
    }
    else if (url is null)
    {
        url = args[i];
    }
    else
    {
        message = args[i];
    }
}

if (url is null)
{
    Console.Error.WriteLine("usage: EchoClient URL [MESSAGE] [--timeout SECONDS]   (URL: tcp://host:port, udp://host:port, unix:/path)");
    return 2;
}

await using ServiceProvider services = new ServiceCollection().AddLogging().AddTransport().Services.BuildServiceProvider();
TransportConnectionFactory client = services.GetRequiredService<TransportConnectionFactory>();
using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
try
{
    EndPoint endpoint = TransportUrl.ParseConnectEndPoint(url);
    await using ConnectionContext connection = await client.ConnectAsync(endpoint, timeout.Token);
    if (endpoint is UdpEndPoint)
    {
        await ExchangeDatagramsAsync(connection, message, timeout.Token);
        return 0;
    }

    Task sending = SendAsync(connection.Transport.Output, message, timeout.Token);
    Stream stdout = Console.OpenStandardOutput();
    while (true)
    {
        ReadResult result = await connection.Transport.Input.ReadAsync(timeout.Token);
        foreach (ReadOnlyMemory<byte> segment in result.Buffer)
        {
            await stdout.WriteAsync(segment, timeout.Token);
        }

        connection.Transport.Input.AdvanceTo(result.Buffer.End);
        if (result.IsCompleted)
        {
            break;
        }
    }

    await sending;
    if (message is not null)
    {
        await stdout.WriteAsync("\n"u8.ToArray(), timeout.Token);
    }

    await stdout.FlushAsync(timeout.Token);
    return 0;
}
catch (OperationCanceledException) when (timeout.IsCancellationRequested)
{
    Console.Error.WriteLine($"error: no complete answer from {url} within {timeoutSeconds} s");
}
catch (Exception ex) when (ex is FormatException or NotSupportedException or IOException or ConnectionAbortedException)
{
    Console.Error.WriteLine($"error: {ex.Message}");
}

return 1;

static async Task ExchangeDatagramsAsync(ConnectionContext connection, string? message, CancellationToken cancellationToken)
{
    IEnumerable<string> datagrams = message is not null ? [message] : ReadLines(Console.In);
    foreach (string datagram in datagrams)
    {
        await connection.Transport.Output.WriteAsync(System.Text.Encoding.UTF8.GetBytes(datagram), cancellationToken);
        ReadResult reply = await connection.Transport.Input.ReadAsync(cancellationToken);
        Console.WriteLine(System.Text.Encoding.UTF8.GetString(System.Buffers.BuffersExtensions.ToArray(reply.Buffer)));
        connection.Transport.Input.AdvanceTo(reply.Buffer.End);
    }
}

static IEnumerable<string> ReadLines(TextReader reader)
{
    while (reader.ReadLine() is { } line)
    {
        yield return line;
    }
}

static async Task SendAsync(PipeWriter output, string? message, CancellationToken cancellationToken)
{
    if (message is not null)
    {
        await output.WriteAsync(System.Text.Encoding.UTF8.GetBytes(message), cancellationToken);
    }
    else
    {
        await Console.OpenStandardInput().CopyToAsync(output, cancellationToken);
    }

    // Completing the output closes our sending side (FIN): the echo server then finishes and closes.
    await output.CompleteAsync();
}
