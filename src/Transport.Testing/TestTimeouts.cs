namespace Transport.Testing;

/// <summary>
/// Bounded awaits: a test that waits on the network fails after <see cref="Default"/> instead of hanging the run.
/// </summary>
public static class TestTimeouts
{
    /// <summary>The bound on every await in the kit: 30 seconds.</summary>
    public static TimeSpan Default { get; } = TimeSpan.FromSeconds(30);

    /// <summary>Waits for <paramref name="task"/>, failing with <see cref="TimeoutException"/> after <see cref="Default"/>.</summary>
    /// <param name="task">The task.</param>
    /// <returns>A task that completes with <paramref name="task"/> or times out.</returns>
    public static Task DefaultTimeout(this Task task) => task.WaitAsync(Default);

    /// <summary>Waits for <paramref name="task"/>, failing with <see cref="TimeoutException"/> after <see cref="Default"/>.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="task">The task.</param>
    /// <returns>The task's result.</returns>
    public static Task<T> DefaultTimeout<T>(this Task<T> task) => task.WaitAsync(Default);

    /// <summary>Waits for <paramref name="task"/>, failing with <see cref="TimeoutException"/> after <see cref="Default"/>.</summary>
    /// <param name="task">The task.</param>
    /// <returns>A task that completes with <paramref name="task"/> or times out.</returns>
    public static Task DefaultTimeout(this ValueTask task) => task.AsTask().WaitAsync(Default);

    /// <summary>Waits for <paramref name="task"/>, failing with <see cref="TimeoutException"/> after <see cref="Default"/>.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="task">The task.</param>
    /// <returns>The task's result.</returns>
    public static Task<T> DefaultTimeout<T>(this ValueTask<T> task) => task.AsTask().WaitAsync(Default);

    /// <summary>
    /// Waits until <paramref name="condition"/> holds (checked every 10 ms), failing after <see cref="Default"/>:
    /// for state another thread changes without an event to await.
    /// </summary>
    /// <param name="condition">The condition.</param>
    /// <returns>A task that completes when the condition holds.</returns>
    public static async Task UntilAsync(Func<bool> condition)
    {
        ArgumentNullException.ThrowIfNull(condition);
        using var timeout = new CancellationTokenSource(Default);
        while (!condition())
        {
            await Task.Delay(10, timeout.Token).ConfigureAwait(false);
        }
    }
}
