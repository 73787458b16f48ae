namespace Transport.Framing;

/// <summary>
/// The peer sent bytes that are not a valid frame: a length over the maximum message size, a negative or
/// overflowing length, a delimiter that does not come within the maximum, a message cut short by the end of the
/// stream, or anything a framer rejects. Only that connection is affected.
/// </summary>
/// <remarks>
/// It derives from <see cref="Exception"/>, deliberately not from <see cref="IOException"/> (Kestrel's
/// <c>BadHttpRequestException</c> does): the Transport host treats <see cref="IOException"/> as the transport
/// ending (reset, abort) and logs it at Debug, whereas bad input is worth an operator's attention. The host logs
/// this exception at Error with the connection id and closes only that connection.
/// </remarks>
public class InvalidFrameException : Exception
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

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What was wrong with the frame.</param>
    /// <param name="innerException">The cause.</param>
    public InvalidFrameException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    internal static InvalidFrameException TooLarge(long declared, int max) =>
        new($"Invalid frame: the message declares {declared} bytes, more than the maximum message size of {max} bytes.");
}
