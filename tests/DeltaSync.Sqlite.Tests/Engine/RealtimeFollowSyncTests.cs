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

    public void Dispose() => _workspace.Dispose();
}
