namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>
/// Crashes and damaged state, simulated on the state file: the destination's committed checkpoint, versioned history
/// and repair keep the destination equal to the source with nothing applied twice (invariants 2 and 3).
/// </summary>
public sealed class CheckpointRecoverySyncTests : IDisposable
{
    private readonly SyncWorkspace _workspace = new();
    private readonly ItemsTable _items;

    public CheckpointRecoverySyncTests()
    {
        _items = new ItemsTable(_workspace.Source);
        _items.Create();
        _items.InsertMany(1, 12);
    }

    public static TheoryData<string> Methods() => new()
    {
        "{name: items, cdc_method: timestamp}",
        "{name: items, cdc_method: version, sequence_field: seq}",
        "{name: items, cdc_method: trigger}",
        "{name: items, cdc_method: polling}",
    };

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task A_crash_between_the_destination_commit_and_the_state_save_resumes_from_the_destination_checkpoint(string table)
    {
        var config = _workspace.Configure(SyncYaml.Config(table, batchSize: 5));
        await _workspace.RunCompletedAsync(config);
        _items.InsertMany(13, 16);
        _items.Update(4, "changed", 4.5);
        await _workspace.RunCompletedAsync(config);
        var lost = NewestStateVersion();

        // The state save of the last batch never happened: its version exists only in the destination, with the data.
        _workspace.State.Execute("DELETE FROM checkpoints WHERE stream = $stream AND version = $version", ("$stream", SyncWorkspace.Stream(ItemsTable.Name)), ("$version", lost));
        _items.InsertMany(17, 18);
        var report = await _workspace.RunCompletedAsync(config);

        Assert.Contains(report.Warnings, w => w.Contains($"version {lost}", StringComparison.Ordinal) && w.Contains("recovered it from the destination", StringComparison.Ordinal));
        Assert.Equal(lost, Assert.Single(report.Tables).ResumedFromVersion);
        Assert.Equal(2, report.Statistics.RecordsInserted);
        Assert.Equal(0, report.Statistics.RecordsUpdated);
        _workspace.AssertSynced(ItemsTable.Name, "id");
        await using var state = await _workspace.OpenStateAsync();
        var history = await state.ReadHistoryAsync(SyncWorkspace.Stream(ItemsTable.Name), 1000, CancellationToken.None);
        Assert.Contains(history, h => h.Version == lost && h.Payload.Contains("recovered from the destination", StringComparison.Ordinal));
        Assert.Equal(0, SyncWorkspace.Writes(await _workspace.RunCompletedAsync(config)));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task A_corrupt_newest_checkpoint_is_repaired_from_the_previous_version(string table)
    {
        var config = _workspace.Configure(SyncYaml.Config(table, batchSize: 5, blocks: "state: {recovery: {auto_repair: true}}"));
        await _workspace.RunCompletedAsync(config);
        _items.InsertMany(13, 14);
        await _workspace.RunCompletedAsync(config);
        var corrupt = NewestStateVersion();
        Corrupt(corrupt);

        _items.Update(7, "after the repair", "n");
        var report = await _workspace.RunCompletedAsync(config);

        Assert.Contains(report.Warnings, w => w.Contains($"version {corrupt} was corrupt", StringComparison.Ordinal) && w.Contains($"repaired from version {corrupt - 1}", StringComparison.Ordinal));
        Assert.Equal(0, report.Statistics.RecordsInserted);
        Assert.Equal(1, report.Statistics.RecordsUpdated);
        _workspace.AssertSynced(ItemsTable.Name, "id");
        Assert.Equal(0, SyncWorkspace.Writes(await _workspace.RunCompletedAsync(config)));
    }

    [Fact]
    public async Task A_corrupt_newest_checkpoint_without_repair_fails_the_table_naming_it_and_the_version()
    {
        var config = _workspace.Configure(SyncYaml.Config("{name: items, cdc_method: trigger}", batchSize: 5, blocks: "state: {recovery: {auto_repair: false, reset_on_corruption: false}}"));
        await _workspace.RunCompletedAsync(config);
        _items.InsertMany(13, 14);
        await _workspace.RunCompletedAsync(config);
        var corrupt = NewestStateVersion();
        Corrupt(corrupt);
        _items.InsertMany(15, 16);
        var before = _workspace.Destination.Count(ItemsTable.Name);

        var report = await _workspace.RunAsync(config);

        Assert.Equal("failed", report.Metadata.Status);
        Assert.Equal(1, report.ExitCode);
        var failed = Assert.Single(report.Tables);
        Assert.Equal("failed", failed.Status);
        Assert.NotNull(failed.Error);
        Assert.Contains(ItemsTable.Name, failed.Error, StringComparison.Ordinal);
        Assert.Contains($"version {corrupt}", failed.Error, StringComparison.Ordinal);
        Assert.Contains(report.Errors, e => e.Message == failed.Error);
        Assert.Equal(before, _workspace.Destination.Count(ItemsTable.Name));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task A_full_refresh_of_an_unchanged_source_writes_nothing(string table)
    {
        var config = _workspace.Configure(SyncYaml.Config(table, batchSize: 5));
        await _workspace.RunCompletedAsync(config);

        var report = await _workspace.RunCompletedAsync(config, fullRefresh: true);

        Assert.Equal("full_refresh", report.Metadata.Mode);
        Assert.True(SyncWorkspace.Writes(report) == 0, SyncWorkspace.Describe(report));
        _workspace.AssertSynced(ItemsTable.Name, "id");
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task A_full_refresh_after_changes_writes_only_the_changes(string table)
    {
        var config = _workspace.Configure(SyncYaml.Config(table, batchSize: 5));
        await _workspace.RunCompletedAsync(config);
        _items.Update(3, "refreshed", 3L);
        _items.Insert(13);

        var report = await _workspace.RunCompletedAsync(config, fullRefresh: true);

        Assert.Equal(1, report.Statistics.RecordsInserted);
        Assert.Equal(1, report.Statistics.RecordsUpdated);
        _workspace.AssertSynced(ItemsTable.Name, "id");
        Assert.Equal(0, SyncWorkspace.Writes(await _workspace.RunCompletedAsync(config)));
    }

    private long NewestStateVersion() =>
        (long)_workspace.State.Scalar("SELECT max(version) FROM checkpoints WHERE stream = $stream", ("$stream", SyncWorkspace.Stream(ItemsTable.Name)))!;

    /// <summary>Changes one digit of the payload: still JSON, but the checksum no longer matches.</summary>
    private void Corrupt(long version)
    {
        var changed = _workspace.State.Execute(
            "UPDATE checkpoints SET payload = replace(payload, '\"records_processed\":', '\"records_processed\":9') WHERE stream = $stream AND version = $version",
            ("$stream", SyncWorkspace.Stream(ItemsTable.Name)),
            ("$version", version));
        Assert.Equal(1, changed);
    }

    public void Dispose() => _workspace.Dispose();
}
