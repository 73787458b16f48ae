using System.Net;
using System.Runtime.InteropServices;
using System.Text;

namespace Transport.Fuzz;

/// <summary>
/// <see cref="TransportUrl"/>: any string, as configuration might hold it, either parses or fails with
/// <see cref="FormatException"/> or <see cref="NotSupportedException"/>; every endpoint it gives formats back to a
/// URL that parses to the same endpoint and formats the same again.
/// </summary>
internal static class UrlTarget
{
    public static void Run(ReadOnlySpan<byte> bytes)
    {
        var input = new FuzzInput(bytes);
        byte shape = input.Choice();
        bool listen = (shape & 1) == 0;

        // UTF-8 as a file holds it, or raw UTF-16 code units (lone surrogates included) as an environment variable can.
        ReadOnlySpan<byte> text = input.Rest;
        string url = (shape & 2) == 0
            ? Encoding.UTF8.GetString(text)
            : new string(MemoryMarshal.Cast<byte, char>(text[..(text.Length & ~1)]));

        IReadOnlyList<EndPoint> endpoints;
        try
        {
            endpoints = listen ? TransportUrl.ParseListenEndPoints(url) : [TransportUrl.ParseConnectEndPoint(url)];
        }
        catch (FormatException)
        {
            return;
        }
        catch (NotSupportedException)
        {
            return;
        }

        Check.That(endpoints.Count > 0, "a URL parsed to no endpoint");
        foreach (EndPoint endpoint in endpoints)
        {
            string formatted = TransportUrl.Format(endpoint);
            IReadOnlyList<EndPoint> again;
            try
            {
                again = listen ? TransportUrl.ParseListenEndPoints(formatted) : [TransportUrl.ParseConnectEndPoint(formatted)];
            }
            catch (Exception ex) when (ex is FormatException or NotSupportedException)
            {
                throw new FuzzInvariantException($"'{url}' gave {endpoint}, formatted as '{formatted}', which does not parse: {ex.Message}");
            }

            Check.That(again.Contains(endpoint), $"'{url}' gave {endpoint}, formatted as '{formatted}', which parses to {string.Join(", ", again)}");
            Check.That(again.Any(e => TransportUrl.Format(e) == formatted), $"'{formatted}' does not format back to itself");
        }
    }
}
