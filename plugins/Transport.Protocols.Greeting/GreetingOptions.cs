namespace Transport.Protocols.Greeting;

/// <summary>
/// The greeting page and the HTTP limits of <see cref="GreetingProtocol"/>, usually bound from the <c>Greeting</c>
/// section of appsettings.json. Text values are HTML-encoded into the page.
/// </summary>
public sealed class GreetingOptions
{
    /// <summary>The bold first line.</summary>
    /// <remarks>Defaults to "You Connected to the Server!".</remarks>
    public string Greeting { get; set; } = "You Connected to the Server!";

    /// <summary>The text before the author link.</summary>
    /// <remarks>Defaults to "Brought to you by:".</remarks>
    public string Byline { get; set; } = "Brought to you by:";

    /// <summary>The author link's text.</summary>
    /// <remarks>Defaults to "Austin Walters!".</remarks>
    public string Author { get; set; } = "Austin Walters!";

    /// <summary>The author link's target.</summary>
    /// <remarks>Defaults to "austingwalters.com".</remarks>
    public string AuthorUrl { get; set; } = "austingwalters.com";

    /// <summary>The <c>Server</c> response header.</summary>
    /// <remarks>Defaults to "Transport".</remarks>
    public string ServerName { get; set; } = "Transport";

    /// <summary>The longest request line accepted; longer gets 414.</summary>
    /// <remarks>Defaults to 8192 bytes.</remarks>
    public int MaxRequestLineLength { get; set; } = 8192;

    /// <summary>The most header fields accepted; more gets 431.</summary>
    /// <remarks>Defaults to 100.</remarks>
    public int MaxRequestHeaderCount { get; set; } = 100;

    /// <summary>The largest header section accepted (all field lines); larger gets 431.</summary>
    /// <remarks>Defaults to 32768 bytes.</remarks>
    public int MaxRequestHeadersTotalSize { get; set; } = 32 * 1024;

    /// <summary>The largest request body read (and discarded); larger gets 413.</summary>
    /// <remarks>Defaults to 1 MiB.</remarks>
    public long MaxRequestBodySize { get; set; } = 1024 * 1024;

    /// <summary>How long a client may take to send a whole request once it has started (slowloris guard); then 408.</summary>
    /// <remarks>Defaults to 10 seconds.</remarks>
    public TimeSpan RequestHeadersTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Whether keep-alive is honoured when the client asks for it (HTTP/1.1 by default, HTTP/1.0 with <c>Connection: keep-alive</c>).</summary>
    /// <remarks>Defaults to <see langword="true"/>.</remarks>
    public bool AllowKeepAlive { get; set; } = true;

    /// <summary>How long a kept-alive connection may stay idle between requests before it is closed.</summary>
    /// <remarks>Defaults to 5 seconds.</remarks>
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The most requests served on one connection; the last one is answered with <c>Connection: close</c>.</summary>
    /// <remarks>Defaults to 1000.</remarks>
    public int MaxRequestsPerConnection { get; set; } = 1000;
}
