using NodaTime;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>
/// Validation before resume beyond checksums: a cursor ahead of the source's clock, and a state store that disagrees
/// with what the destination's data reflects (state divergence).
/// </summary>
public sealed class StateValidationSyncTests
{
    private static readonly Instant Noon = Instant.FromUtc(2026, 3, 1, 12, 0);

    [Fact]
    public async Task A_cursor_ahead_of_the_source_clock_is_repaired_and_rows_written_since_are_not_skipped()
    {
        using var workspace = new SyncWorkspace();
        var clock = new ManualClock(Noon);
        var items = new ItemsTable(workspace.Source) { Now = () => clock.Now };
        items.Create();
        items.InsertMany(1, 20);
        var config = workspace.Configure(SyncYaml.Config("items"));
        await workspace.RunCompletedAsync(config, clock: clock);
        clock.Advance(Duration.FromMinutes(1));
        items.InsertMany(21, 25);
        await workspace.RunCompletedAsync(config, clock: clock);

        // The source's clock is set back an hour (it had run fast); rows written now carry the true, older time.
        clock.Advance(Duration.FromHours(-1));
        items.InsertMany(26, 30);
        items.Update(3, "changed after the clock was fixed", null);
        var report = await workspace.RunCompletedAsync(config, clock: clock);

        Assert.Contains(report.Warnings, w => w.Contains("ahead of the source's clock", StringComparison.Ordinal));
        Assert.Equal(5, report.Statistics.RecordsInserted);
        Assert.Equal(1, report.Statistics.RecordsUpdated);
        workspace.AssertSynced("items", "id");
    }

    [Fact]
    public async Task Without_auto_repair_a_cursor_ahead_of_the_source_clock_stops_the_table_naming_it_and_the_version()
    {
        using var workspace = new SyncWorkspace();
        var clock = new ManualClock(Noon);
        var items = new ItemsTable(workspace.Source) { Now = () => clock.Now };
        items.Create();
        items.InsertMany(1, 5);
        var config = workspace.Configure(SyncYaml.Config("items", blocks: "state: {recovery: {auto_repair: false}}"));
        await workspace.RunCompletedAsync(config, clock: clock);
        clock.Advance(Duration.FromHours(-1));

        var report = await workspace.RunAsync(config, clock: clock);

        Assert.Equal("failed", report.Metadata.Status);
        var error = Assert.Single(report.Errors).Message;
        Assert.Contains("'sync/items' version 1 is invalid", error, StringComparison.Ordinal);
        Assert.Contains("ahead of the source's clock", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_destination_that_lost_its_data_and_state_is_refilled_from_the_start()
    {
        using var workspace = new SyncWorkspace();
        var items = new ItemsTable(workspace.Source);
        items.Create();
        items.InsertMany(1, 40);
        var config = workspace.Configure(SyncYaml.Config("items", batchSize: 10));
        await workspace.RunCompletedAsync(config);

        // The warehouse is replaced by an empty one; the state store still says "done up to row 40".
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        File.Delete(workspace.Destination.Path);
        items.InsertMany(41, 45);
        var report = await workspace.RunCompletedAsync(config);

        Assert.Contains(report.Warnings, w => w.Contains("diverged", StringComparison.Ordinal) && w.Contains("no committed checkpoint", StringComparison.Ordinal));
        Assert.Equal(45, report.Statistics.RecordsInserted);
        workspace.AssertSynced("items", "id");
    }

    [Fact]
    public async Task A_destination_restored_from_an_older_backup_resumes_from_what_its_data_reflects()
    {
        using var workspace = new SyncWorkspace();
        var items = new ItemsTable(workspace.Source);
        items.Create();
        items.InsertMany(1, 30);
        var config = workspace.Configure(SyncYaml.Config("items", batchSize: 10));
        await workspace.RunCompletedAsync(config);
        var backup = workspace.Destination.Path + ".bak";
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        File.Copy(workspace.Destination.Path, backup);

        items.InsertMany(31, 60);
        await workspace.RunCompletedAsync(config);
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        File.Copy(backup, workspace.Destination.Path, overwrite: true);
        var report = await workspace.RunCompletedAsync(config);

        Assert.Contains(report.Warnings, w => w.Contains("diverged", StringComparison.Ordinal) && w.Contains("only reached version", StringComparison.Ordinal));
        Assert.Equal(30, report.Statistics.RecordsInserted);
        workspace.AssertSynced("items", "id");
    }
}

/// <summary>State lost at the store while the destination keeps its committed checkpoint and lease epoch.</summary>
public sealed class StateLossSyncTests
{
    [Fact]
    public async Task A_lost_state_store_is_rebuilt_from_the_destination_and_the_lease_epoch_ranks_above_the_destinations()
    {
        using var workspace = new SyncWorkspace();
        var items = new ItemsTable(workspace.Source);
        items.Create();
        items.InsertMany(1, 20);
        var config = workspace.Configure(SyncYaml.Config("items"));
        for (var run = 0; run < 3; run++)
        {
            await workspace.RunCompletedAsync(config);
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        File.Delete(workspace.StatePath);
        items.InsertMany(21, 25);
        var report = await workspace.RunCompletedAsync(config);

        Assert.Equal(5, report.Statistics.RecordsInserted);
        Assert.Contains(report.Warnings, w => w.Contains("the lease epoch was raised", StringComparison.Ordinal));
        Assert.Contains(report.Warnings, w => w.Contains("state store has no checkpoint", StringComparison.Ordinal));
        workspace.AssertSynced("items", "id");
    }
}
