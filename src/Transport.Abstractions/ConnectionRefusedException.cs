namespace Transport;

/// <summary>
/// A connection could not be established: nothing listens at the address, the host cannot be resolved,
/// or the peer refused.
/// </summary>
public sealed class ConnectionRefusedException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">Names the address and the reason.</param>
    /// <param name="innerException">The OS error.</param>
    public ConnectionRefusedException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}
