using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Transport.Testing;

/// <summary>Captures log entries so a test can assert what an operator would read in the log.</summary>
public sealed class TestLoggerProvider : ILoggerProvider
{
    /// <summary>Every entry logged so far, in order.</summary>
    public ConcurrentQueue<TestLogEntry> Entries { get; } = new();

    /// <summary>The entries at <paramref name="level"/>.</summary>
    /// <param name="level">The level.</param>
    /// <returns>The matching entries.</returns>
    public IEnumerable<TestLogEntry> At(LogLevel level) => Entries.Where(e => e.Level == level);

    /// <inheritdoc />
    public ILogger CreateLogger(string categoryName) => new TestLogger(this, categoryName);

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
            owner.Entries.Enqueue(new TestLogEntry(category, logLevel, eventId, formatter(state, exception), exception));
        }
    }
}

/// <summary>One captured log entry.</summary>
/// <param name="Category">The logger's category.</param>
/// <param name="Level">The level.</param>
/// <param name="EventId">The event id.</param>
/// <param name="Message">The formatted message.</param>
/// <param name="Exception">The exception logged with it, if any.</param>
public sealed record TestLogEntry(string Category, LogLevel Level, EventId EventId, string Message, Exception? Exception);
