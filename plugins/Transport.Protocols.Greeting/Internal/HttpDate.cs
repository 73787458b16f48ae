using System.Globalization;
using System.Text;

namespace Transport.Protocols.Greeting.Internal;

/// <summary>The <c>Date</c> header value (RFC 9110 IMF-fixdate), formatted at most once per second and shared.</summary>
internal sealed class HttpDate(TimeProvider time)
{
    private State _state = new(long.MinValue, []);

    public ReadOnlySpan<byte> Current
    {
        get
        {
            DateTimeOffset now = time.GetUtcNow();
            long second = now.ToUnixTimeSeconds();
            State state = Volatile.Read(ref _state);
            if (state.Second != second)
            {
                state = new State(second, Encoding.ASCII.GetBytes(now.ToString("r", CultureInfo.InvariantCulture)));
                Volatile.Write(ref _state, state);
            }

            return state.Value;
        }
    }

    private sealed record State(long Second, byte[] Value);
}
