namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>
/// Re-snapshots (full refresh, schema changes, a schema change left by a stopped run) and several syncs reading one
/// trigger-captured table: no change may be lost between them.
/// </summary>
public sealed class ResnapshotAndSharedSourceTests : IDisposable
{
    private readonly SyncWorkspace _workspace = new();
    private readonly ItemsTable _items;

    public ResnapshotAndSharedSourceTests()
    {
        _items = new ItemsTable(_workspace.Source);
        _items.Create();
        _items.InsertMany(1, 12);
    }

    [Fact]
    public async Task A_full_refresh_with_trigger_capture_carries_deletes_made_since_the_last_run()
    {
        var config = _workspace.Configure(SyncYaml.Config("{name: items, cdc_method: trigger}", batchSize: 5));
        await _workspace.RunCompletedAsync(config);

        _items.Delete(3);
        _items.Delete(11);
        var report = await _workspace.RunCompletedAsync(config, fullRefresh: true);

        Assert.Equal(2, report.Statistics.RecordsDeleted);
        _workspace.AssertSynced(ItemsTable.Name, "id");
        Assert.Equal(0, SyncWorkspace.Writes(await _workspace.RunCompletedAsync(config)));
    }

    [Fact]
    public async Task A_column_added_together_with_a_delete_keeps_the_delete_under_trigger_capture()
    {
        var config = _workspace.Configure(SyncYaml.Config("{name: items, cdc_method: trigger}", batchSize: 5));
        await _workspace.RunCompletedAsync(config);

        _items.Delete(2);
        _workspace.Source.Execute("ALTER TABLE items ADD COLUMN color TEXT");
        _workspace.Source.Execute("UPDATE items SET color = 'blue'");
        await _workspace.RunCompletedAsync(config);

        _workspace.AssertSynced(ItemsTable.Name, "id");
    }

    [Theory]
    [InlineData("timestamp")]
    [InlineData("trigger")]
    public async Task A_column_added_by_a_run_that_stopped_before_committing_is_still_filled(string method)
    {
        var config = _workspace.Configure(SyncYaml.Config($"{{name: items, cdc_method: {method}}}", batchSize: 5));
        await _workspace.RunCompletedAsync(config);

        _workspace.Source.Execute("ALTER TABLE items ADD COLUMN color TEXT");
        _workspace.Source.Execute("UPDATE items SET color = 'blue'");
        // What a run killed right after adding the column leaves behind: the column, but no re-read and no checkpoint.
        _workspace.Destination.Execute("ALTER TABLE items ADD COLUMN color TEXT");
        var report = await _workspace.RunCompletedAsync(config);

        Assert.Contains(report.Warnings, w => w.Contains("re-read in full", StringComparison.Ordinal));
        _workspace.AssertSynced(ItemsTable.Name, "id");
    }

    [Fact]
    public async Task Two_syncs_of_one_trigger_captured_table_each_get_every_change()
    {
        var first = _workspace.Configure(SyncYaml.Config("{name: items, cdc_method: trigger}", batchSize: 5));
        var second = _workspace.Configure(SyncYaml.Config("{name: items, cdc_method: trigger}", batchSize: 5)
            .Replace("sqlite:dest.db", "sqlite:second.db", StringComparison.Ordinal)
            .Replace("sync:\n", "sync:\n  name: second\n", StringComparison.Ordinal));
        await _workspace.RunCompletedAsync(first);
        await _workspace.RunCompletedAsync(second);

        _items.Update(1, "renamed", 1L);
        _items.Delete(2);
        await _workspace.RunCompletedAsync(first);
        var report = await _workspace.RunCompletedAsync(second);

        Assert.Equal(1, report.Statistics.RecordsUpdated);
        Assert.Equal(1, report.Statistics.RecordsDeleted);
        var other = new SqliteTestDb(Path.Combine(_workspace.Folder, "second.db"));
        SyncWorkspace.AssertSameRows(
            _workspace.Source.Dump(ItemsTable.Name, _workspace.Source.Columns(ItemsTable.Name), ["id"]),
            other.Dump(ItemsTable.Name, _workspace.Source.Columns(ItemsTable.Name), ["id"]),
            ItemsTable.Name);
        Assert.Equal(0L, _workspace.Source.Scalar("SELECT count(*) FROM _deltasync_changes"));
    }

    public void Dispose() => _workspace.Dispose();
}

/// <summary>An operator's rollback wins over a checkpoint the destination committed with a higher version number.</summary>
public sealed class RollbackAgainstDestinationTests : IDisposable
{
    private readonly SyncWorkspace _workspace = new();

    [Fact]
    public async Task A_rollback_is_honoured_even_when_the_destination_committed_a_higher_version()
    {
        var items = new ItemsTable(_workspace.Source);
        items.Create();
        items.InsertMany(1, 12);
        // The store is written only at the end of a pass; the destination after every batch.
        var config = _workspace.Configure(SyncYaml.Config("{name: items, cdc_method: trigger}", batchSize: 4, blocks: "state: {checkpointing: {frequency: every_n_records, interval: 1000000}}"));
        await _workspace.RunCompletedAsync(config);
        for (var id = 1; id <= 9; id++)
        {
            items.Update(id, "changed", id);
        }

        await _workspace.RunCompletedAsync(config);

        var stream = SyncWorkspace.Stream(ItemsTable.Name);
        long restoredVersion;
        // The second pass stopped before its state save: the store is behind what the destination committed.
        _workspace.State.Execute("DELETE FROM checkpoints WHERE stream = $s AND version = (SELECT max(version) FROM checkpoints WHERE stream = $s)", ("$s", stream));
        await using (var store = await _workspace.OpenStateAsync())
        {
            var history = new Core.State.CheckpointHistory(store, NodaTime.SystemClock.Instance);
            var versions = await history.ListAsync(stream, int.MaxValue, CancellationToken.None);
            var oldest = versions[^1].Stored.Version;
            var restored = await history.RollbackAsync(stream, oldest, CancellationToken.None);
            restoredVersion = restored.Version;
            var committed = (long)_workspace.Destination.Scalar("SELECT version FROM _deltasync_checkpoints WHERE stream = $s", ("$s", stream))!;
            Assert.True(committed > restored.Version, $"the scenario needs the destination ahead: destination v{committed}, rollback v{restored.Version}, store had {string.Join(",", versions.Select(v => v.Stored.Version))}");
        }

        var report = await _workspace.RunCompletedAsync(config);

        Assert.False(report.Warnings.Any(w => w.Contains("recovered it from the destination", StringComparison.Ordinal)), string.Join("\n", report.Warnings));
        Assert.Equal(restoredVersion, report.Tables[0].ResumedFromVersion);
        Assert.Equal(0, SyncWorkspace.Writes(report));
        _workspace.AssertSynced(ItemsTable.Name, "id");
    }

    public void Dispose() => _workspace.Dispose();
}
