using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;
using Transport.Internal;

namespace Transport.Tests;

/// <summary>The retry policy of the accept and receive loops, on a fake clock: delays, episodes, and the end of an episode.</summary>
public sealed class RetryBackoffTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly List<(long Failures, TimeSpan Duration)> _recovered = [];
    private readonly RetryBackoff _backoff;

    public RetryBackoffTests()
    {
        _backoff = new RetryBackoff(_time, (failures, duration) =>
        {
            lock (_recovered)
            {
                _recovered.Add((failures, duration));
            }
        });
    }

    [Fact]
    public void Delays_StartShort_Double_AndStopAtOneSecond()
    {
        var delays = new List<double>();
        var started = new List<bool>();
        for (int i = 0; i < 10; i++)
        {
            delays.Add(_backoff.Fail(out bool episodeStarted).TotalMilliseconds);
            started.Add(episodeStarted);
        }

        Assert.Equal([10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000], delays);
        Assert.Equal([true, false, false, false, false, false, false, false, false, false], started);
        Assert.Equal(10, _backoff.Failures);
    }

    [Fact]
    public void EpisodeEnds_OnlyAfterTwoSecondsOfSuccess_ReportingFailuresAndTheirSpan()
    {
        _backoff.Fail(out _);
        _time.Advance(TimeSpan.FromMilliseconds(10));
        _backoff.Fail(out _);
        _time.Advance(TimeSpan.FromMilliseconds(20));
        _backoff.Fail(out _);
        _time.Advance(TimeSpan.FromMilliseconds(40));

        _backoff.Succeed();
        _time.Advance(TimeSpan.FromMilliseconds(1999) - TimeSpan.FromMilliseconds(40));
        Assert.Empty(_recovered);
        _time.Advance(TimeSpan.FromMilliseconds(1));

        Assert.Equal([(3, TimeSpan.FromMilliseconds(30))], _recovered);
        Assert.Equal(0, _backoff.Failures);
    }

    [Fact]
    public void OneFailure_ThenSuccess_EndsTheEpisode()
    {
        _backoff.Fail(out bool started);
        _backoff.Succeed();
        _time.Advance(RetryBackoff.QuietPeriod);

        Assert.True(started);
        Assert.Equal([(1, TimeSpan.Zero)], _recovered);
    }

    [Fact]
    public void FailuresBetweenSuccesses_AtTheLimit_StayOneEpisode_AndRestartTheDelayShort()
    {
        // A server at its descriptor limit with clients coming and going: every freed descriptor lets one accept through.
        var starts = 0;
        var delaysAfterSuccess = new List<double>();
        for (int i = 0; i < 100; i++)
        {
            TimeSpan delay = _backoff.Fail(out bool started);
            starts += started ? 1 : 0;
            if (i > 0)
            {
                delaysAfterSuccess.Add(delay.TotalMilliseconds);
            }

            _time.Advance(delay);
            _backoff.Succeed();
            _time.Advance(TimeSpan.FromMilliseconds(500));
        }

        Assert.Equal(1, starts);
        Assert.All(delaysAfterSuccess, d => Assert.Equal(10, d));
        Assert.Empty(_recovered);
        _time.Advance(RetryBackoff.QuietPeriod);
        (long failures, _) = Assert.Single(_recovered);
        Assert.Equal(100, failures);
    }

    [Fact]
    public void AfterAnEpisodeEnds_TheNextFailureStartsANewOne()
    {
        _backoff.Fail(out _);
        _backoff.Succeed();
        _time.Advance(RetryBackoff.QuietPeriod);

        _backoff.Fail(out bool started);

        Assert.True(started);
        Assert.Equal(TimeSpan.FromMilliseconds(10), _backoff.Fail(out _) / 2);
    }

    [Fact]
    public void Success_OutsideAnEpisode_ReportsNothing()
    {
        _backoff.Succeed();
        _time.Advance(TimeSpan.FromMinutes(1));

        Assert.Empty(_recovered);
    }

    [Fact]
    public async Task WaitAsync_ReturnsTrue_WhenTheDelayHasPassedOnTheClock()
    {
        Task<bool> waiting = _backoff.WaitAsync(TimeSpan.FromSeconds(1), new TaskCompletionSource().Task, CancellationToken.None);
        _time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.False(waiting.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(1));

        Assert.True(await waiting.DefaultTimeout());
    }

    [Fact]
    public async Task WaitAsync_ReturnsFalseAtOnce_WhenStopped_WithoutTheClockMoving()
    {
        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<bool> waiting = _backoff.WaitAsync(TimeSpan.FromSeconds(1), stop.Task, CancellationToken.None);

        stop.SetResult();

        Assert.False(await waiting.DefaultTimeout());
        Assert.False(await _backoff.WaitAsync(TimeSpan.FromSeconds(1), stop.Task, CancellationToken.None).DefaultTimeout());
    }

    [Fact]
    public async Task WaitAsync_Throws_WhenTheCallerCancels()
    {
        using var cancel = new CancellationTokenSource();
        Task<bool> waiting = _backoff.WaitAsync(TimeSpan.FromSeconds(1), new TaskCompletionSource().Task, cancel.Token);

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting).DefaultTimeout();
    }

    [Fact]
    public void ErrorType_IsTheSocketError_OrTheExceptionType()
    {
        Assert.Equal("TooManyOpenSockets", RetryBackoff.ErrorType(new SocketException((int)SocketError.TooManyOpenSockets)));
        Assert.Equal("NoBufferSpaceAvailable", RetryBackoff.ErrorType(new SocketException((int)SocketError.NoBufferSpaceAvailable)));
        Assert.Equal("System.InvalidOperationException", RetryBackoff.ErrorType(new InvalidOperationException()));
    }
}
