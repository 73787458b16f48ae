using System.Buffers;

namespace Transport.Fuzz.Tests;

/// <summary>
/// The proxy-protocol target's seeds are what their names say, so the fuzzer starts from every family, LOCAL, UNKNOWN,
/// TLVs and each kind of malformed header: <c>seed-v…</c> parse as complete headers, <c>seed-malformed-…</c> are refused.
/// </summary>
public sealed class ProxyProtocolCorpusTests
{
    private static readonly string Corpus = Path.Combine(AppContext.BaseDirectory, "corpus", "proxy-protocol");

    public static TheoryData<string> Seeds() => new(Directory.GetFiles(Corpus, "seed-*").Select(Path.GetFileName).Order(StringComparer.Ordinal)!);

    [Theory]
    [MemberData(nameof(Seeds))]
    public void EachSeed_ParsesAsItsNameSays(string name)
    {
        byte[] data = File.ReadAllBytes(Path.Combine(Corpus, name))[2..];   // after the target's two choice bytes

        ProxyProtocolReadResult result = ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(data));

        ProxyProtocolStatus[] expected = name switch
        {
            _ when name.StartsWith("seed-v", StringComparison.Ordinal) => [ProxyProtocolStatus.Complete],
            _ when name.StartsWith("seed-malformed-", StringComparison.Ordinal) =>
                [ProxyProtocolStatus.Malformed, ProxyProtocolStatus.TooLong, ProxyProtocolStatus.ChecksumMismatch],
            _ when name.StartsWith("seed-partial-", StringComparison.Ordinal) => [ProxyProtocolStatus.Incomplete],
            _ => [ProxyProtocolStatus.NotProxyProtocol],
        };
        Assert.True(expected.Contains(result.Status), $"{name}: {result.Status} {result.Error}");
        if (name == "seed-v2-ipv4-tlvs-crc")
        {
            Assert.Equal("h2", result.Header!.ApplicationProtocol);
            Assert.Equal("api.example.com", result.Header.Authority);
            Assert.Equal("TLSv1.3", result.Header.Ssl?.Version);
        }
    }
}
