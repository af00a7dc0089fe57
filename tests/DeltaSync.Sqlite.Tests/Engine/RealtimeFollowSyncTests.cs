using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Pipeline;
using Microsoft.Extensions.Logging.Abstractions;
using NodaTime;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary><c>run --follow</c> with <c>frequency: realtime</c>: passes that find changes follow each other at once; an idle pass waits the polling interval.</summary>
public sealed class RealtimeFollowSyncTests : IDisposable
{
    private readonly SyncWorkspace _workspace = new();

    [Fact]
    public async Task A_pass_that_found_changes_is_followed_at_once_and_an_idle_pass_waits_the_interval()
    {
        _workspace.Source.Execute("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT, updated_at TEXT)");
        _workspace.Source.Execute("INSERT INTO items VALUES (1, 'a', '2026-01-01T00:00:00Z'), (2, 'b', '2026-01-01T00:00:00Z')");
        var config = _workspace.Configure(SyncYaml.Config(["{name: items, cdc_method: trigger}"]));
        // An interval no test run could wait out: a second pass can only come from the busy-pass rule.
        config = config with { Sync = config.Sync with { Frequency = SyncFrequency.Realtime(Duration.FromHours(1)) } };
        var engine = new SyncEngine(config, new ConnectorRegistry().Add(new SqliteConnector()), SystemClock.Instance, NullLogger.Instance);
        var processed = new List<long>();
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(2));

        var follow = engine.FollowAsync(
            new RunOptions([], false, null),
            null,
            outcome =>
            {
                processed.Add(outcome.Report.Statistics.RecordsProcessed);
                if (processed.Count == 1)
                {
                    // Written while the first pass reports: the next pass, started at once, finds it.
                    _workspace.Source.Execute("UPDATE items SET v = 'changed' WHERE id = 2");
                }

                return Task.CompletedTask;
            },
            stop.Token);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (processed.Count < 3 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        // Give a wrongly immediate fourth pass time to show up before stopping.
        await Task.Delay(1500);
        await stop.CancelAsync();
        await follow;

        Assert.Equal([2, 1, 0], processed);
        _workspace.AssertSynced("items", "id");
    }

    public void Dispose() => _workspace.Dispose();
}
