using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Transport;
using Transport.Hosting;

// The tutorial's client, without its flaw: resolves the host, connects, sends GET <path> HTTP/1.0, and prints
// the ENTIRE answer, reading until the server closes (or Content-Length is satisfied).
// Usage: GreetingClient [URL] [--timeout SECONDS]
//   URL: http://host[:port][/path] (default http://localhost:8080/) or unix:/path/to/socket
string target = "http://localhost:8080/";
double timeoutSeconds = 10;
for (int i = 0; i < args.Length; i++)
{
    if (args[i] == "--timeout" && i + 1 < args.Length
        && double.TryParse(args[i + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out double t) && t > 0)
    {
        timeoutSeconds = t;
        i++;
    }
    else if (args[i].StartsWith('-'))
    {
        return Fail($"unknown option '{args[i]}'. Usage: GreetingClient [http://host[:port][/path] | unix:/path] [--timeout SECONDS]", 2);
    }
    else
    {
        target = args[i];
    }
}

using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
await using ServiceProvider services = new ServiceCollection().AddLogging().AddTransport().Services.BuildServiceProvider();
TransportConnectionFactory client = services.GetRequiredService<TransportConnectionFactory>();
long received = 0;
try
{
    (IReadOnlyList<EndPoint> candidates, string host, string path) = await ResolveAsync(target, timeout.Token);
    ConnectionContext connection = await ConnectAsync(client, candidates, timeout.Token);
    await using (connection)
    {
        string requestLine = $"GET {path} HTTP/1.0";
        Console.WriteLine("SENDING: " + requestLine);
        Console.WriteLine("===");
        await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes($"{requestLine}\r\nHost: {host}\r\nUser-Agent: GreetingClient\r\n\r\n"), timeout.Token);

        Stream stdout = Console.OpenStandardOutput();
        long? contentLength = null;
        long headLength = -1;
        var head = new ArrayBufferWriter<byte>();
        PipeReader input = connection.Transport.Input;
        while (true)
        {
            ReadResult result = await input.ReadAsync(timeout.Token);
            foreach (ReadOnlyMemory<byte> segment in result.Buffer)
            {
                await stdout.WriteAsync(segment, timeout.Token);
                if (headLength < 0)
                {
                    head.Write(segment.Span);
                    (headLength, contentLength) = TryParseHead(head.WrittenSpan);
                }
            }

            received += result.Buffer.Length;
            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted || (contentLength is long length && headLength >= 0 && received >= headLength + length))
            {
                break;
            }
        }

        await stdout.FlushAsync(timeout.Token);
    }

    return 0;
}
catch (OperationCanceledException) when (timeout.IsCancellationRequested)
{
    return Fail($"timed out after {timeoutSeconds.ToString(CultureInfo.InvariantCulture)} s waiting for {target} ({received} bytes received)");
}
catch (ConnectionResetException ex)
{
    return Fail($"the server reset the connection after {received} bytes: {ex.Message}");
}
catch (Exception ex) when (ex is ConnectionRefusedException or FormatException or NotSupportedException or IOException or SocketException)
{
    return Fail(ex.Message);
}

static int Fail(string reason, int code = 1)
{
    Console.Error.WriteLine("error: " + reason);
    return code;
}

static async Task<(IReadOnlyList<EndPoint> Candidates, string Host, string Path)> ResolveAsync(string target, CancellationToken cancellationToken)
{
    if (target.StartsWith("unix:", StringComparison.OrdinalIgnoreCase))
    {
        return ([TransportUrl.ParseConnectEndPoint(target)], "localhost", "/");
    }

    if (!Uri.TryCreate(target, UriKind.Absolute, out Uri? uri) || uri.Scheme != Uri.UriSchemeHttp)
    {
        throw new FormatException($"'{target}' is not an http://host[:port][/path] URL or a unix:/path");
    }

    string host = uri.IdnHost;
    IPAddress[] addresses;
    if (IPAddress.TryParse(host, out IPAddress? literal))
    {
        addresses = [literal];
    }
    else
    {
        try
        {
            addresses = await Dns.GetHostAddressesAsync(host, cancellationToken);
        }
        catch (SocketException ex)
        {
            throw new IOException($"cannot resolve host '{host}': {ex.Message}", ex);
        }
    }

    if (addresses.Length == 0)
    {
        throw new IOException($"cannot resolve host '{host}': no addresses");
    }

    return ([.. addresses.Select(a => new IPEndPoint(a, uri.Port))], uri.Authority, uri.PathAndQuery);
}

static async Task<ConnectionContext> ConnectAsync(TransportConnectionFactory client, IReadOnlyList<EndPoint> candidates, CancellationToken cancellationToken)
{
    ConnectionRefusedException? last = null;
    foreach (EndPoint candidate in candidates)
    {
        try
        {
            return await client.ConnectAsync(candidate, cancellationToken);
        }
        catch (ConnectionRefusedException ex)
        {
            last = ex;
        }
    }

    throw last!;
}

// Returns the head's length (through the blank line) and Content-Length, once the head is complete.
static (long HeadLength, long? ContentLength) TryParseHead(ReadOnlySpan<byte> bytes)
{
    int end = bytes.IndexOf("\r\n\r\n"u8);
    if (end < 0)
    {
        return (-1, null);
    }

    foreach (string line in Encoding.ASCII.GetString(bytes[..end]).Split("\r\n"))
    {
        if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)
            && long.TryParse(line.AsSpan(15).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out long length))
        {
            return (end + 4, length);
        }
    }

    return (end + 4, null);
}
