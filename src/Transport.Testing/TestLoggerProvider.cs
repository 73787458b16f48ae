using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Transport.Testing;

/// <summary>Captures log entries, with the scopes they were logged in, so a test can assert what an operator would read in the log.</summary>
public sealed class TestLoggerProvider : ILoggerProvider, ISupportExternalScope
{
    private IExternalScopeProvider? _scopes;

    /// <summary>Every entry logged so far, in order.</summary>
    public ConcurrentQueue<TestLogEntry> Entries { get; } = new();

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
            owner.Entries.Enqueue(new TestLogEntry(category, logLevel, eventId, formatter(state, exception), exception) { Scopes = scopes });
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
