using System.Buffers;
using System.Text;
using Transport.Protocols.Greeting;
using Transport.Protocols.Greeting.Internal;

namespace Transport.Tests;

/// <summary>The greeting server's head parser on its own: early judgement of the request line agrees with the full parse.</summary>
public sealed class HttpRequestParserTests
{
    private static readonly string[] Pieces =
        ["GET", "HEAD", "BREW", "get", " ", " ", "/", "/a?b", "*", "http://h/", "HTTP/", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "1", ".", "0",
         "\t", "\r", "\0", "\u0001", "\u007F", "\u00E9", "(", ":", "x"];

    private static readonly string[] Continuations = ["", " / HTTP/1.0", "/ HTTP/1.0", " HTTP/1.0", "HTTP/1.0", "1.0", ".0", "0"];

    [Fact]
    public void EarlyRejectedPrefix_IsRejectedByTheFullParse_WhateverFollows_AndAValidLineIsNeverRejectedEarly()
    {
        var random = new Random(8);
        int early = 0;
        for (int i = 0; i < 20_000; i++)
        {
            string prefix = string.Concat(Enumerable.Range(0, random.Next(1, 7)).Select(_ => Pieces[random.Next(Pieces.Length)]));
            bool rejectedEarly = FindHeadEnd(prefix) == HttpStatus.BadRequest;
            early += rejectedEarly ? 1 : 0;
            foreach (string rest in Continuations)
            {
                HttpStatus full = ParseWhole(prefix + rest + "\r\nHost: a\r\n\r\n");
                if (rejectedEarly)
                {
                    Assert.True(full == HttpStatus.BadRequest, $"'{Escape(prefix)}' was rejected early, but '{Escape(prefix + rest)}' parses as {full}");
                }
            }
        }

        // The sample holds both kinds, so the property was exercised.
        Assert.InRange(early, 1000, 19_000);
    }

    [Theory]
    [InlineData("GET / HTTP/1.1")]
    [InlineData("BREW /a?b HTTP/1.0")]
    [InlineData("OPTIONS * HTTP/1.1")]
    [InlineData("GET http://h/\u00E9 HTTP/1.0")]
    [InlineData("GET / HTTP/2.0")]
    public void EveryPrefixOfAWellFormedRequestLine_WaitsForMore(string line)
    {
        for (int length = 1; length <= line.Length; length++)
        {
            Assert.Null(FindHeadEnd(line[..length]));
        }
    }

    [Fact]
    public void PrefixTricklingInOneByteAtATime_IsJudgedAtTheFirstBadByte()
    {
        var parser = new HttpRequestParser(new GreetingOptions());
        byte[] bytes = Encoding.Latin1.GetBytes("GET /ok\u0001rest");
        for (int length = 1; length <= 6; length++)
        {
            Assert.Null(parser.FindHeadEnd(new ReadOnlySequence<byte>(bytes, 0, length), out _, out _));
        }

        Assert.Equal(HttpStatus.BadRequest, parser.FindHeadEnd(new ReadOnlySequence<byte>(bytes, 0, 8), out _, out string? reason));
        Assert.Equal("control character in the request target", reason);
    }

    private static HttpStatus? FindHeadEnd(string text) =>
        new HttpRequestParser(new GreetingOptions()).FindHeadEnd(new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(text)), out _, out _);

    private static HttpStatus ParseWhole(string text)
    {
        var buffer = new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(text));
        HttpStatus? found = new HttpRequestParser(new GreetingOptions()).FindHeadEnd(buffer, out SequencePosition end, out _);
        return found != HttpStatus.Ok ? found ?? throw new InvalidOperationException("incomplete: " + Escape(text))
            : HttpRequestParser.Parse(buffer.Slice(0, end), out _, out _);
    }

    private static string Escape(string text) =>
        string.Concat(text.Select(c => c is < ' ' or > '~' ? $"\\x{(int)c:X2}" : c.ToString()));
}
