using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Transport.Testing;

/// <summary>Captures log entries, with the scopes they were logged in, so a test can assert what an operator would read in the log.</summary>
public sealed class TestLoggerProvider : ILoggerProvider, ISupportExternalScope
{
    private IExternalScopeProvider? _scopes;
    // Guards adding an entry together with counting it for the waiters, so that a waiter that registers while
    // entries arrive counts each one exactly once.
    private readonly Lock _lock = new();
    private readonly List<EventWaiter> _waiters = [];

    /// <summary>Every entry logged so far, in order.</summary>
    public ConcurrentQueue<TestLogEntry> Entries { get; } = new();

    /// <summary>
    /// Waits until <paramref name="count"/> entries with event id <paramref name="eventId"/> have been logged, those
    /// logged already included, failing with <see cref="TimeoutException"/> after <see cref="TestTimeouts.Default"/>:
    /// the event an operator would see, matched by its id rather than by its text.
    /// </summary>
    /// <param name="eventId">The event id, as in the <c>[LoggerMessage]</c> that logs it.</param>
    /// <param name="count">How many such entries to wait for.</param>
    /// <param name="category">Only entries of this logger category (e.g. <c>Transport.Udp</c>), or null for any.</param>
    /// <returns>A task that completes once that many entries are in <see cref="Entries"/>.</returns>
    public async Task WaitForEventAsync(int eventId, int count = 1, string? category = null)
    {
        var waiter = new EventWaiter(eventId, category, count);
        lock (_lock)
        {
            foreach (TestLogEntry entry in Entries)
            {
                waiter.Count(entry);
            }

            if (waiter.Done.Task.IsCompleted)
            {
                return;
            }

            _waiters.Add(waiter);
        }

        try
        {
            await waiter.Done.Task.DefaultTimeout().ConfigureAwait(false);
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException(
                $"Event {eventId}{(category is null ? "" : " of " + category)} was logged {waiter.Seen} of {count} times within {TestTimeouts.Default}.", ex);
        }
        finally
        {
            lock (_lock)
            {
                _waiters.Remove(waiter);
            }
        }
    }

    /// <summary>The entries at <paramref name="level"/>.</summary>
    /// <param name="level">The level.</param>
    /// <returns>The matching entries.</returns>
    public IEnumerable<TestLogEntry> At(LogLevel level) => Entries.Where(e => e.Level == level);

    /// <inheritdoc />
    public ILogger CreateLogger(string categoryName) => new TestLogger(this, categoryName);

    /// <inheritdoc />
    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    /// <inheritdoc />
    public void Dispose()
    {
    }

    private sealed class TestLogger(TestLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            ArgumentNullException.ThrowIfNull(formatter);
            var scopes = new List<object?>();
            owner._scopes?.ForEachScope(static (scope, list) => list.Add(scope), scopes);
            var entry = new TestLogEntry(category, logLevel, eventId, formatter(state, exception), exception) { Scopes = scopes };
            lock (owner._lock)
            {
                owner.Entries.Enqueue(entry);
                foreach (EventWaiter waiter in owner._waiters)
                {
                    waiter.Count(entry);
                }
            }
        }
    }

    private sealed class EventWaiter(int eventId, string? category, int count)
    {
        private int _seen;

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Seen => Volatile.Read(ref _seen);

        public void Count(TestLogEntry entry)
        {
            if (entry.EventId.Id == eventId && (category is null || entry.Category == category) && Interlocked.Increment(ref _seen) >= count)
            {
                Done.TrySetResult();
            }
        }
    }
}

/// <summary>One captured log entry.</summary>
/// <param name="Category">The logger's category.</param>
/// <param name="Level">The level.</param>
/// <param name="EventId">The event id.</param>
/// <param name="Message">The formatted message.</param>
/// <param name="Exception">The exception logged with it, if any.</param>
public sealed record TestLogEntry(string Category, LogLevel Level, EventId EventId, string Message, Exception? Exception)
{
    /// <summary>The scopes the entry was logged in, outermost first (e.g. the host's connection scope).</summary>
    public IReadOnlyList<object?> Scopes { get; init; } = [];

    /// <summary>The value of <paramref name="key"/> in the innermost scope that has it, or null.</summary>
    /// <param name="key">A scope property, e.g. <c>ConnectionId</c>.</param>
    /// <returns>The value, or null.</returns>
    public object? ScopeValue(string key) =>
        Scopes.Reverse().OfType<IEnumerable<KeyValuePair<string, object>>>().SelectMany(s => s).Where(p => p.Key == key).Select(p => (object?)p.Value).FirstOrDefault();
}
