using System.Net;

namespace Transport.Framing;

/// <summary>
/// The peer sent bytes that are not a valid frame: a length over the maximum message size, a negative or
/// overflowing length, a delimiter that does not come within the maximum, a message cut short by the end of the
/// stream, or anything a framer rejects. Only that connection is affected.
/// </summary>
/// <remarks>
/// It derives from <see cref="ProtocolViolationException"/>, the ecosystem's "the peer broke the protocol" type,
/// deliberately not from <see cref="IOException"/> (Kestrel's <c>BadHttpRequestException</c> does): the Transport
/// host treats <see cref="IOException"/> as the transport ending (reset, abort), and treats any
/// <see cref="ProtocolViolationException"/> from a protocol as the client's bad input, not a server fault: one
/// Debug line per connection with the message and no stack trace, counted in the
/// <c>transport.connection.duration</c> metric with <c>error.type=invalid_input</c>, and only that connection is closed. Error stays for
/// exceptions that are faults in the server's own code.
/// </remarks>
public class InvalidFrameException : ProtocolViolationException
{
    /// <summary>Creates the exception with a default message.</summary>
    public InvalidFrameException()
        : base("The peer sent an invalid frame.")
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What was wrong with the frame.</param>
    public InvalidFrameException(string message)
        : base(message)
    {
    }

    internal static InvalidFrameException TooLarge(long declared, int max) =>
        new($"Invalid frame: the message declares {declared} bytes, more than the maximum message size of {max} bytes.");
}
