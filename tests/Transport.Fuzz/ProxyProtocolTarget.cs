using System.Buffers;

namespace Transport.Fuzz;

/// <summary>
/// <see cref="ProxyProtocolHeader.TryRead"/> (the PROXY protocol v1/v2 parser): any bytes, in any segments, under any
/// <c>MaxHeaderBytes</c>, give one answer without throwing, the same however they are cut; a complete header is no
/// longer than the input or the limit, every shorter prefix of it is <c>Incomplete</c> (never a wrong verdict from too
/// few bytes), and it writes back to bytes that parse to the same header.
/// </summary>
internal static class ProxyProtocolTarget
{
    private static readonly int[] Limits = [ProxyProtocolHeader.MaxV2Length, TransportLimitsMin, 256, 4096];

    // TransportProxyProtocolOptions.MinMaxHeaderBytes (Transport.Hosting): 16 + 216.
    private const int TransportLimitsMin = 16 + 216;

    public static void Run(ReadOnlySpan<byte> bytes)
    {
        var input = new FuzzInput(bytes);
        byte shape = input.Choice();
        int maxHeaderBytes = Limits[shape & 3];
        byte[] data = input.Rest.ToArray();

        ProxyProtocolReadResult whole = ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(data), maxHeaderBytes);
        ProxyProtocolReadResult cut = ProxyProtocolHeader.TryRead(Chunks.ToSequence(data, Chunks.Cut(data.Length, input.Choice())), maxHeaderBytes);
        Check.That(Same(whole, cut), $"one segment gave {Describe(whole)}, cut into segments {Describe(cut)}");

        if (whole.Status != ProxyProtocolStatus.Complete)
        {
            Check.That(whole.Header is null, $"{whole.Status} with a header");
            Check.That(whole.Status is not (ProxyProtocolStatus.Malformed or ProxyProtocolStatus.TooLong) || !string.IsNullOrEmpty(whole.Error),
                $"{whole.Status} without a reason");
            return;
        }

        ProxyProtocolHeader header = whole.Header!;
        Check.That(whole.Length > 0 && whole.Length <= data.Length, $"a header of {whole.Length} bytes from {data.Length}");
        Check.That(header.Version is 1 or 2, $"version {header.Version}");
        Check.That(header.Version == 1 ? whole.Length <= ProxyProtocolHeader.MaxV1Length : whole.Length <= maxHeaderBytes,
            $"a v{header.Version} header of {whole.Length} bytes over the limit {maxHeaderBytes}");

        // Decided early, never wrongly: a prefix of a valid header only ever asks for more (bounded: quadratic).
        for (int length = 0; length < Math.Min(whole.Length, 300); length++)
        {
            ProxyProtocolReadResult prefix = ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(data, 0, length), maxHeaderBytes);
            Check.That(prefix.Status == ProxyProtocolStatus.Incomplete, $"the first {length} of a {whole.Length}-byte header gave {Describe(prefix)}");
        }

        // What the sender side writes for it parses back to the same header.
        byte[] written = header.ToArray();
        ProxyProtocolReadResult again = ProxyProtocolHeader.TryRead(new ReadOnlySequence<byte>(written), ProxyProtocolHeader.MaxV2Length);
        Check.That(again.Status == ProxyProtocolStatus.Complete && again.Length == written.Length,
            $"{header} written as {written.Length} bytes parses as {Describe(again)}");
        Check.That(again.Header!.ToString() == header.ToString() && again.Header.Tlvs.Count == header.Tlvs.Count,
            $"{header} written and parsed again is {again.Header}");
    }

    private static bool Same(ProxyProtocolReadResult a, ProxyProtocolReadResult b) =>
        a.Status == b.Status && a.Length == b.Length && a.Error == b.Error && a.Header?.ToString() == b.Header?.ToString();

    private static string Describe(ProxyProtocolReadResult result) =>
        $"{result.Status} ({result.Length} bytes{(result.Error is null ? "" : ", " + result.Error)}{(result.Header is null ? "" : ", " + result.Header)})";
}
