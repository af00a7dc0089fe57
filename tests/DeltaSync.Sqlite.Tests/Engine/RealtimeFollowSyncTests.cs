using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Pipeline;
using Microsoft.Extensions.Logging.Abstractions;
using NodaTime;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary><c>run --follow</c> with <c>frequency: realtime</c>: passes that write changes follow each other at once; a pass that wrote nothing waits the polling interval.</summary>
public sealed class RealtimeFollowSyncTests : IDisposable
{
    private readonly SyncWorkspace _workspace = new();

    [Theory]
    [InlineData("trigger")]
    [InlineData("timestamp")]
    public async Task A_pass_that_wrote_changes_is_followed_at_once_and_a_pass_that_wrote_none_waits_the_interval(string method)
    {
        // Stamped now: a timestamp cursor's lookback re-reads them on every pass, which must not count as work.
        _workspace.Source.Execute("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT, updated_at TEXT)");
        _workspace.Source.Execute("INSERT INTO items VALUES (1, 'a', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 seconds')), (2, 'b', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 seconds'))");
        var config = _workspace.Configure(SyncYaml.Config([$"{{name: items, cdc_method: {method}}}"]));
        // An interval no test run could wait out: a second pass can only come from the busy-pass rule.
        config = config with { Sync = config.Sync with { Frequency = SyncFrequency.Realtime(Duration.FromHours(1)) } };
        var engine = new SyncEngine(config, new ConnectorRegistry().Add(new SqliteConnector()), SystemClock.Instance, NullLogger.Instance);
        var written = new List<long>();
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(2));

        var follow = engine.FollowAsync(
            new RunOptions([], false, null),
            null,
            outcome =>
            {
                var s = outcome.Report.Statistics;
                written.Add(s.RecordsInserted + s.RecordsUpdated + s.RecordsDeleted);
                if (written.Count == 1)
                {
                    // Written while the first pass reports: the next pass, started at once, finds it.
                    _workspace.Source.Execute("UPDATE items SET v = 'changed', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 seconds') WHERE id = 2");
                }

                return Task.CompletedTask;
            },
            stop.Token);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (written.Count < 3 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        // Give a wrongly immediate fourth pass time to show up before stopping.
        await Task.Delay(1500);
        await stop.CancelAsync();
        await follow;

        Assert.Equal([2, 1, 0], written);
        _workspace.AssertSynced("items", "id");
    }

    [Fact]
    public async Task A_pass_stopped_on_request_is_partial_not_failed_and_the_next_run_finishes_the_work()
    {
        _workspace.Source.Execute("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT, updated_at TEXT)");
        _workspace.Source.Execute("INSERT INTO items VALUES (1, 'a', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 seconds')), (2, 'b', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 seconds'))");
        var config = _workspace.Configure(SyncYaml.Config(["{name: items, cdc_method: timestamp}"]));
        using var stop = new CancellationTokenSource();
        // The stop request arrives as the table's pass starts, before its first batch (a SIGTERM just after --follow
        // began a pass lands here): the source requests it while the table is being described.
        var engine = new SyncEngine(config, new ConnectorRegistry().Add(new StoppingConnector(new SqliteConnector(), stop)), SystemClock.Instance, NullLogger.Instance);

        var stopped = await engine.RunOnceAsync(new RunOptions([], false, Path.Combine(_workspace.Folder, "stopped.json")), null, stop.Token);

        Assert.True(stopped.OnlyStopped, $"{stopped.Report.Metadata.Status}: {string.Join("; ", stopped.Report.Errors.Select(e => e.Message))} | {string.Join("; ", stopped.Report.Warnings)} | {string.Join(", ", stopped.Report.Tables.Select(t => t.Status))}");
        Assert.Equal("partial", stopped.Report.Metadata.Status);
        Assert.Empty(stopped.Report.Errors);
        var table = Assert.Single(stopped.Report.Tables);
        Assert.Equal("partial", table.Status);
        Assert.Contains(stopped.Report.Warnings, w => w.Contains("stopped on request", StringComparison.Ordinal));

        await _workspace.RunCompletedAsync(config);
        _workspace.AssertSynced("items", "id");
    }

    [Fact]
    public async Task A_pass_that_fails_is_not_taken_for_a_stop()
    {
        var config = _workspace.Configure(SyncYaml.Config(["{name: missing_table, cdc_method: timestamp}"]));
        var engine = new SyncEngine(config, new ConnectorRegistry().Add(new SqliteConnector()), SystemClock.Instance, NullLogger.Instance);
        _workspace.Source.Execute("CREATE TABLE other (id INTEGER PRIMARY KEY)");
        using var stop = new CancellationTokenSource();

        var outcome = await engine.RunOnceAsync(new RunOptions([], false, Path.Combine(_workspace.Folder, "failed.json")), null, stop.Token);

        Assert.False(outcome.OnlyStopped);
        Assert.Equal("failed", outcome.Report.Metadata.Status);
    }

    public void Dispose() => _workspace.Dispose();

    /// <summary>The SQLite connector, whose sources request <paramref name="stop"/> when asked to describe a table.</summary>
    private sealed class StoppingConnector(IConnector inner, CancellationTokenSource stop) : IConnector
    {
        public string Name => inner.Name;

        public bool Accepts(string connection) => inner.Accepts(connection);

        public async Task<ISource> OpenSourceAsync(EndpointOptions endpoint, SyncConfig config, CancellationToken cancellationToken) =>
            StoppingSource.Over(await inner.OpenSourceAsync(endpoint, config, cancellationToken), stop);

        public Task<IDestination> OpenDestinationAsync(EndpointOptions endpoint, SyncConfig config, CancellationToken cancellationToken) =>
            inner.OpenDestinationAsync(endpoint, config, cancellationToken);

        public Task<DeltaSync.Core.State.IStateStore>? OpenStateStoreAsync(string connection, SyncConfig config, CancellationToken cancellationToken) =>
            inner.OpenStateStoreAsync(connection, config, cancellationToken);
    }

    /// <summary>A source that passes every call through, requesting the stop first when a table is described.</summary>
    public class StoppingSource : System.Reflection.DispatchProxy
    {
        private ISource _inner = null!;
        private CancellationTokenSource _stop = null!;

        public static ISource Over(ISource inner, CancellationTokenSource stop)
        {
            var proxy = Create<ISource, StoppingSource>();
            var self = (StoppingSource)(object)proxy;
            (self._inner, self._stop) = (inner, stop);
            return proxy;
        }

        protected override object? Invoke(System.Reflection.MethodInfo? targetMethod, object?[]? args)
        {
            ArgumentNullException.ThrowIfNull(targetMethod);
            if (targetMethod.Name == nameof(ISource.DescribeTableAsync))
            {
                _stop.Cancel();
            }

            return targetMethod.Invoke(_inner, args);
        }
    }
}
