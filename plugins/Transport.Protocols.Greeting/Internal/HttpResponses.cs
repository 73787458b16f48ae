using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Text;

namespace Transport.Protocols.Greeting.Internal;

/// <summary>
/// Every response the server sends, rendered once from the options: only the <c>Date</c> value and the
/// <c>Connection</c> header vary per response, so writing one copies a few spans and allocates nothing.
/// </summary>
internal sealed class HttpResponses
{
    private static readonly byte[] KeepAliveEnd = "\r\nConnection: keep-alive\r\n\r\n"u8.ToArray();
    private static readonly byte[] CloseEnd = "\r\nConnection: close\r\n\r\n"u8.ToArray();

    private readonly Dictionary<HttpStatus, Canned> _responses = [];
    private readonly HttpDate _date;

    public HttpResponses(GreetingOptions options, HttpDate date)
    {
        _date = date;
        string page = $"<b>{Html(options.Greeting)}</b></br></br>{Html(options.Byline)} <a href=\"{Html(options.AuthorUrl)}\">{Html(options.Author)}</a>";
        Page = Encoding.UTF8.GetBytes(page);
        Add(HttpStatus.Ok, "OK", Page, options);
        Add(HttpStatus.BadRequest, "Bad Request", null, options);
        Add(HttpStatus.NotFound, "Not Found", null, options);
        Add(HttpStatus.MethodNotAllowed, "Method Not Allowed", null, options, "Allow: GET, HEAD\r\n");
        Add(HttpStatus.RequestTimeout, "Request Timeout", null, options);
        Add(HttpStatus.ContentTooLarge, "Content Too Large", null, options);
        Add(HttpStatus.UriTooLong, "URI Too Long", null, options);
        Add(HttpStatus.HeaderFieldsTooLarge, "Request Header Fields Too Large", null, options);
        Add(HttpStatus.NotImplemented, "Not Implemented", null, options);
        Add(HttpStatus.VersionNotSupported, "HTTP Version Not Supported", null, options);
    }

    /// <summary>The greeting page's bytes.</summary>
    public byte[] Page { get; }

    /// <summary>Writes the whole response (without flushing).</summary>
    public void Write(PipeWriter output, HttpStatus status, bool keepAlive, bool includeBody)
    {
        Canned canned = _responses[status];
        output.Write(canned.Head);
        output.Write(_date.Current);
        output.Write(keepAlive ? KeepAliveEnd : CloseEnd);
        if (includeBody)
        {
            output.Write(canned.Body);
        }
    }

    private void Add(HttpStatus status, string reason, byte[]? body, GreetingOptions options, string extraHeaders = "")
    {
        int code = (int)status;
        body ??= Encoding.UTF8.GetBytes($"<html><body><h1>{code.ToString(CultureInfo.InvariantCulture)} {reason}</h1></body></html>");
        string head =
            $"HTTP/1.0 {code.ToString(CultureInfo.InvariantCulture)} {reason}\r\n" +
            $"Server: {options.ServerName}\r\n" +
            "Content-Type: text/html; charset=utf-8\r\n" +
            $"Content-Length: {body.Length.ToString(CultureInfo.InvariantCulture)}\r\n" +
            extraHeaders +
            "Date: ";
        _responses[status] = new Canned(Encoding.ASCII.GetBytes(head), body);
    }

    private static string Html(string text) => WebUtility.HtmlEncode(text);

    private sealed record Canned(byte[] Head, byte[] Body);
}
