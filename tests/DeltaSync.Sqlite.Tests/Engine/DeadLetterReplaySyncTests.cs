using System.Globalization;
using DeltaSync.Core.Config;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using NodaTime;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>
/// <c>dlq replay</c> end to end on real SQLite files: after a fix at the source or the destination, each dead-lettered
/// record is read again from the source by its key and applied; what applies leaves the queue, what fails again stays
/// with one more attempt and the new reason.
/// </summary>
public sealed class DeadLetterReplaySyncTests : IDisposable
{
    private const string Table = "{name: items, cdc_method: timestamp}";

    private readonly SyncWorkspace _workspace = new();
    private readonly ItemsTable _items;

    public DeadLetterReplaySyncTests()
    {
        _items = new ItemsTable(_workspace.Source);
        _items.Create();
    }

    [Fact]
    public async Task A_timestamp_fixed_at_the_source_to_a_value_behind_the_cursor_is_applied_by_replay_and_leaves_the_queue()
    {
        _items.InsertMany(1, 4);
        _items.Insert(5, updatedAt: "not a date");
        var config = _workspace.Configure(SyncYaml.Config(Table));
        var first = await _workspace.RunAsync(config);
        Assert.Equal("partial", first.Metadata.Status);
        var queued = Assert.Single(await QueueAsync(config));
        Assert.Equal("5", queued.RecordId);

        // Fixed to a time long before the cursor: a normal run does not read the row again.
        _workspace.Source.Execute("UPDATE items SET updated_at = '2020-01-01T00:00:00Z' WHERE id = 5");
        var normal = await _workspace.RunCompletedAsync(config);
        Assert.Equal(0, SyncWorkspace.Writes(normal));
        Assert.Null(_workspace.Destination.Scalar("SELECT id FROM items WHERE id = 5"));

        var replay = Assert.Single(await ReplayAsync(config));

        Assert.Null(replay.Error);
        Assert.Equal((1, 1, 0), (replay.Replayed, replay.Applied, replay.StillFailing.Count));
        Assert.Equal(1, replay.Written.Inserted);
        _workspace.AssertSynced(ItemsTable.Name, "id");
        Assert.Empty(await QueueAsync(config));
        var after = await _workspace.RunCompletedAsync(config);
        Assert.Equal(0, SyncWorkspace.Writes(after));
        Assert.DoesNotContain(after.Warnings, w => w.Contains("dead-letter", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_timestamp_still_unparseable_at_replay_stays_queued_with_another_attempt()
    {
        _items.InsertMany(1, 2);
        _items.Insert(3, updatedAt: "not a date");
        var config = _workspace.Configure(SyncYaml.Config(Table));
        await _workspace.RunAsync(config);
        _workspace.Source.Execute("UPDATE items SET updated_at = 'still not a date' WHERE id = 3");

        var replay = Assert.Single(await ReplayAsync(config));

        var failing = Assert.Single(replay.StillFailing);
        Assert.Equal(0, replay.Applied);
        Assert.Equal(2, failing.Attempts);
        Assert.Contains("still not a date", failing.Reason, StringComparison.Ordinal);
        var queued = Assert.Single(await QueueAsync(config));
        Assert.Equal(failing.Id, queued.Id);
        Assert.Equal(2, queued.Attempts);
        Assert.Contains("\"updated_at\":\"still not a date\"", queued.RawRecord, StringComparison.Ordinal);
        Assert.Null(_workspace.Destination.Scalar("SELECT id FROM items WHERE id = 3"));
    }

    [Fact]
    public async Task Records_the_destination_refused_stay_queued_until_the_constraint_is_relaxed_then_replay_applies_them()
    {
        long[] refused = [3, 10, 17, 24];
        _items.InsertMany(1, 30);
        _workspace.Destination.Execute(DestinationItems("CHECK (qty IS NULL OR qty <> 3)"));
        var config = _workspace.Configure(SyncYaml.Config(Table, batchSize: 10));
        var run = await _workspace.RunAsync(config);
        Assert.Equal(refused.Length, run.Statistics.RecordsDeadLettered);

        var before = Assert.Single(await ReplayAsync(config));

        Assert.Null(before.Error);
        Assert.Equal((refused.Length, 0), (before.Replayed, before.Applied));
        Assert.Equal(refused, before.StillFailing.Select(d => long.Parse(d.RecordId, CultureInfo.InvariantCulture)).Order());
        Assert.All(before.StillFailing, d => Assert.Equal(2, d.Attempts));
        Assert.All(before.StillFailing, d => Assert.Contains("CHECK constraint failed", d.Reason, StringComparison.Ordinal));
        var queued = await QueueAsync(config);
        Assert.Equal(refused.Length, queued.Count);
        Assert.All(queued, d => Assert.Equal(2, d.Attempts));

        // A record that changed at the source since it was queued: its entry makes way for one of the current row.
        var oldTen = queued.Single(d => d.RecordId == "10");
        _workspace.Source.Execute("UPDATE items SET name = 'renamed' WHERE id = 10");
        var changed = Assert.Single(await ReplayAsync(config));
        var ten = changed.StillFailing.Single(d => d.RecordId == "10");
        Assert.NotEqual(oldTen.Id, ten.Id);
        Assert.Equal(3, ten.Attempts);
        queued = await QueueAsync(config);
        Assert.DoesNotContain(queued, d => d.Id == oldTen.Id);
        Assert.Contains(queued, d => d.Id == ten.Id && d.Attempts == 3 && d.RawRecord.Contains("renamed", StringComparison.Ordinal));
        Assert.Equal(refused.Length, queued.Count);

        // The fix: the table recreated without the constraint, its rows copied over.
        _workspace.Destination.Execute(DestinationItems("", "items_relaxed") + """
            ;
            INSERT INTO items_relaxed SELECT * FROM items;
            DROP TABLE items;
            ALTER TABLE items_relaxed RENAME TO items;
            """);
        var after = Assert.Single(await ReplayAsync(config));

        Assert.Null(after.Error);
        Assert.Equal((refused.Length, refused.Length, 0), (after.Replayed, after.Applied, after.StillFailing.Count));
        Assert.Equal(refused.Length, after.Written.Inserted);
        _workspace.AssertSynced(ItemsTable.Name, "id");
        Assert.Empty(await QueueAsync(config));
        Assert.Equal(0, SyncWorkspace.Writes(await _workspace.RunCompletedAsync(config)));
    }

    [Fact]
    public async Task A_dead_lettered_record_deleted_at_the_source_is_deleted_at_the_destination_and_leaves_the_queue()
    {
        _items.InsertMany(1, 5);
        var config = _workspace.Configure(SyncYaml.Config(Table));
        await _workspace.RunCompletedAsync(config);

        // 5 was synced, then changed to an unreadable timestamp (dead-lettered, the old row stays at the destination);
        // 6 was never synced. Both are then deleted at the source.
        _workspace.Source.Execute("UPDATE items SET name = 'changed', updated_at = 'garbage' WHERE id = 5");
        _items.Insert(6, updatedAt: "garbage too");
        var run = await _workspace.RunAsync(config);
        Assert.Equal(2, run.Statistics.RecordsDeadLettered);
        Assert.NotNull(_workspace.Destination.Scalar("SELECT id FROM items WHERE id = 5"));
        _items.Delete(5);
        _items.Delete(6);

        var replay = Assert.Single(await ReplayAsync(config));

        Assert.Null(replay.Error);
        Assert.Equal((2, 2, 0), (replay.Replayed, replay.Applied, replay.StillFailing.Count));
        Assert.Equal(1, replay.Written.Deleted);
        _workspace.AssertSynced(ItemsTable.Name, "id");
        Assert.Empty(await QueueAsync(config));
    }

    [Fact]
    public async Task Replay_keeps_the_checkpoint_where_the_run_left_it()
    {
        _items.InsertMany(1, 3);
        _items.Insert(4, updatedAt: "nope");
        var config = _workspace.Configure(SyncYaml.Config(Table));
        await _workspace.RunAsync(config);
        var checkpoint = await _workspace.NewestCheckpointAsync(ItemsTable.Name);
        _workspace.Source.Execute("UPDATE items SET updated_at = '2021-06-01 08:00:00' WHERE id = 4");

        Assert.Equal(1, Assert.Single(await ReplayAsync(config)).Applied);

        var after = await _workspace.NewestCheckpointAsync(ItemsTable.Name);
        Assert.Equal((checkpoint.Version, checkpoint.Position), (after.Version, after.Position));
        _workspace.AssertSynced(ItemsTable.Name, "id");
    }

    public void Dispose() => _workspace.Dispose();

    private async Task<IReadOnlyList<DeadLetter>> QueueAsync(SyncConfig config)
    {
        await using var store = await _workspace.OpenStateAsync();
        return await new DeadLetterQueue(config, store).ListAsync(null, CancellationToken.None);
    }

    /// <summary>What <c>deltasync dlq replay --config …</c> does: every entry of the sync.</summary>
    private async Task<IReadOnlyList<TableReplayResult>> ReplayAsync(SyncConfig config)
    {
        var clock = SystemClock.Instance;
        var connector = new SqliteConnector(clock);
        await using var store = await _workspace.OpenStateAsync();
        await using var source = await connector.OpenSourceAsync(config.Sync.Source, config, CancellationToken.None);
        await using var destination = await connector.OpenDestinationAsync(config.Sync.Destination, config, CancellationToken.None);
        var entries = await new DeadLetterQueue(config, store).ListAsync(null, CancellationToken.None);
        return await new DeadLetterReplay(config, source, destination, store, clock).ReplayAsync(entries, CancellationToken.None);
    }

    private static string DestinationItems(string qtyCheck, string name = "items") => $"""
        CREATE TABLE {name} (
          id INTEGER PRIMARY KEY,
          name TEXT NOT NULL,
          price REAL,
          qty INTEGER {qtyCheck},
          data BLOB,
          note,
          updated_at TEXT,
          row_version INTEGER NOT NULL DEFAULT 1,
          seq INTEGER NOT NULL)
        """;
}
