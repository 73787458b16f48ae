using System.Buffers;
using System.Text;
using Transport.Protocols.Greeting;
using Transport.Protocols.Greeting.Internal;

namespace Transport.Tests;

/// <summary>
/// The greeting parser's limits give the same verdict however the bytes are cut into reads, and bound what it
/// buffers before an answer (cases found by fuzzing, tests/Transport.Fuzz).
/// </summary>
public sealed class HttpRequestParserLimitTests
{
    [Fact]
    public void RequestLineAtTheLimit_WhoseCrArrivesBeforeItsLf_IsNotTooLong()
    {
        var parser = new HttpRequestParser(new GreetingOptions { MaxRequestLineLength = "GET / HTTP/1.0".Length });

        Assert.Null(Find(parser, "GET / HTTP/1.0\r"));
        Assert.Equal(HttpStatus.Ok, Find(parser, "GET / HTTP/1.0\r\n\r\n"));
    }

    [Fact]
    public void HeadersAtTheLimit_WhoseBlankLineCrArrivesBeforeItsLf_AreNotTooLarge()
    {
        var parser = new HttpRequestParser(new GreetingOptions { MaxRequestHeadersTotalSize = "Host: x\r\n".Length });

        Assert.Null(Find(parser, "GET / HTTP/1.0\r\nHost: x\r\n\r"));
        Assert.Equal(HttpStatus.Ok, Find(parser, "GET / HTTP/1.0\r\nHost: x\r\n\r\n"));
    }

    [Theory]
    [InlineData("GET / HTTP/1.0\r")]
    [InlineData("GET / HTTP/1.0\r\nHost: x\r\n\r")]
    public void OverTheLimitsByOneByte_StillFailsWhenTheNextByteArrives(string head)
    {
        var limits = new GreetingOptions { MaxRequestLineLength = "GET / HTTP/1.0".Length - 1, MaxRequestHeadersTotalSize = "Host: x\r\n".Length - 1 };

        Assert.NotEqual(HttpStatus.Ok, Find(new HttpRequestParser(limits), head + "\n\r\n"));
        Assert.NotEqual(HttpStatus.Ok, Find(new HttpRequestParser(limits), head + "x"));
    }

    [Fact]
    public void EmptyLinesBeforeTheRequestLine_AreBoundedByTheRequestLineLimit()
    {
        var limits = new GreetingOptions { MaxRequestLineLength = 16 };

        Assert.Equal(HttpStatus.Ok, Find(new HttpRequestParser(limits), "\r\n\r\nGET / HTTP/1.0\r\n\r\n"));
        Assert.Equal(HttpStatus.BadRequest, Find(new HttpRequestParser(limits), string.Concat(Enumerable.Repeat("\r\n", 9))));
    }

    private static HttpStatus? Find(HttpRequestParser parser, string buffered) =>
        parser.FindHeadEnd(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(buffered)), out _, out _);
}
