namespace Transport.Protocols.Greeting.Internal;

/// <summary>The statuses the greeting server answers with, and why a request got one.</summary>
internal enum HttpStatus
{
    Ok = 200,
    BadRequest = 400,
    NotFound = 404,
    MethodNotAllowed = 405,
    RequestTimeout = 408,
    ContentTooLarge = 413,
    UriTooLong = 414,
    HeaderFieldsTooLarge = 431,
    NotImplemented = 501,
    VersionNotSupported = 505,
}
