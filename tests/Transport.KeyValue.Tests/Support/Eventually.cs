namespace Transport.KeyValue.Tests;

/// <summary>Polls an asynchronous condition (every 10 ms) until it holds, failing after <see cref="TestTimeouts.Default"/>.</summary>
internal static class Eventually
{
    public static async Task TrueAsync(Func<Task<bool>> condition)
    {
        using var timeout = new CancellationTokenSource(TestTimeouts.Default);
        while (!await condition())
        {
            await Task.Delay(10, timeout.Token);
        }
    }
}
