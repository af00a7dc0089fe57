using DeltaSync.Core.Connectors;
using DeltaSync.Core.Pipeline;
using DeltaSync.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using NodaTime;

namespace DeltaSync.Postgres.Tests.Engine;

/// <summary><c>run --follow</c> on the log: one replication stream carries on from pass to pass.</summary>
public sealed class WalFollowTests
{
    [Fact]
    public async Task Passes_of_follow_read_on_from_the_same_replication_stream_and_the_slot_is_advanced_at_the_end()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("CREATE TABLE items (id bigint PRIMARY KEY, n int NOT NULL); INSERT INTO items SELECT g, 0 FROM generate_series(1, 100) g");
        var config = w.Config("{name: items, cdc_method: changelog}");
        config = config with { Sync = config.Sync with { Frequency = Core.Config.SyncFrequency.Realtime(Duration.FromMilliseconds(50)) } };
        var slot = TablePlan.FromConfig(config).Single().SlotName;
        var engine = new SyncEngine(config, new ConnectorRegistry().Add(new SqliteConnector()).Add(new PostgresConnector()), SystemClock.Instance, NullLogger.Instance);
        var walsenders = new List<int?>();
        var passes = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(2));

        await engine.FollowAsync(
            new RunOptions([], false, Path.Combine(w.Folder, "reports", "follow.json")),
            null,
            async outcome =>
            {
                Assert.Equal("completed", outcome.Report.Metadata.Status);
                passes++;
                if (passes > 1)
                {
                    walsenders.Add(await w.Source.ScalarAsync<int?>("SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", slot));
                }

                await w.Source.ExecuteAsync($"UPDATE items SET n = {passes} WHERE id = {passes}");
                if (passes == 6)
                {
                    await stop.CancelAsync();
                }
            },
            stop.Token);

        // Between passes the slot stays held by one walsender: the stream is not restarted.
        Assert.Equal(5, walsenders.Count);
        Assert.All(walsenders, pid => Assert.NotNull(pid));
        Assert.Single(walsenders.Distinct());
        // When follow ends, the stream is closed and the slot advanced to the last checkpoint.
        Assert.Null(await w.Source.ScalarAsync<int?>("SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", slot));
        var report = await w.RunCompletedAsync(config);
        await w.AssertSameAsync("SELECT id, n FROM items ORDER BY id");
        Assert.Equal(1, report.Statistics.RecordsUpdated);
    }
}
