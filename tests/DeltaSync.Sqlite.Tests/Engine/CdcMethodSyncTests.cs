namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>Each capture method, SQLite to SQLite through the engine: snapshot, changes, and a pass with nothing to do.</summary>
public sealed class CdcMethodSyncTests : IDisposable
{
    private readonly SyncWorkspace _workspace = new();

    /// <summary>The table entry for each method, and whether the method sees hard deletes.</summary>
    public static TheoryData<string, string, bool> Methods() => new()
    {
        { "timestamp", "{name: items, cdc_method: timestamp}", false },
        { "version_field", "{name: items, cdc_method: version, version_field: row_version}", true },
        { "sequence_field", "{name: items, cdc_method: version, sequence_field: seq}", false },
        { "trigger", "{name: items, cdc_method: trigger}", true },
        { "polling", "{name: items, cdc_method: polling}", true },
    };

    [Fact]
    public async Task Hybrid_capture_reconciles_what_the_timestamp_cursor_cannot_see()
    {
        var items = new ItemsTable(_workspace.Source);
        items.Create();
        items.InsertMany(1, 30);
        var config = _workspace.Configure(SyncYaml.Config("{name: items, cdc_method: hybrid}", batchSize: 7, blocks: "cdc: {hybrid: {reconcile_interval: 0s}}"));
        await _workspace.RunCompletedAsync(config);

        items.Delete(3);
        items.Delete(20);
        var report = await _workspace.RunCompletedAsync(config);

        Assert.Equal(2, report.Statistics.RecordsDeleted);
        Assert.Equal("hybrid", MethodName(report));
        _workspace.AssertSynced(ItemsTable.Name, "id");
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task Snapshot_then_changes_then_an_idle_pass_keep_the_destination_equal_to_the_source(string method, string table, bool seesDeletes)
    {
        var items = new ItemsTable(_workspace.Source);
        items.Create();
        items.InsertMany(1, 30);
        var config = _workspace.Configure(SyncYaml.Config(table, batchSize: 7));

        var initial = await _workspace.RunCompletedAsync(config);

        Assert.Equal(30, initial.Statistics.RecordsInserted);
        Assert.Equal(0, initial.Statistics.RecordsUpdated);
        Assert.Equal(method, MethodName(initial));
        _workspace.AssertSynced(ItemsTable.Name, "id");

        items.InsertMany(31, 35);
        foreach (var id in new long[] { 2, 5, 9, 14, 21, 33, 35 })
        {
            // Every storage class changes into another: integer → real → text → blob → NULL → integer.
            items.Update(id, "renamed " + id, ItemsTable.Note(id + 1));
        }

        if (seesDeletes)
        {
            items.Delete(3);
            items.Delete(20);
            items.Delete(34);
        }

        var changes = await _workspace.RunCompletedAsync(config);

        // 33 and 35 were inserted and updated since the last pass: inserts. 34 came and went: nothing to write.
        Assert.Equal(seesDeletes ? 4 : 5, changes.Statistics.RecordsInserted);
        Assert.Equal(5, changes.Statistics.RecordsUpdated);
        Assert.Equal(seesDeletes ? 2 : 0, changes.Statistics.RecordsDeleted);
        _workspace.AssertSynced(ItemsTable.Name, "id");

        var idle = await _workspace.RunCompletedAsync(config);

        Assert.True(SyncWorkspace.Writes(idle) == 0, $"an idle pass wrote: {SyncWorkspace.Describe(idle)}");
        _workspace.AssertSynced(ItemsTable.Name, "id");
    }

    private static string MethodName(Core.Reporting.SyncReport report) => Assert.Single(report.Tables).CdcMethod switch
    {
        "version" => report.Tables[0].Position.StartsWith("sequence", StringComparison.Ordinal) ? "sequence_field" : "version_field",
        var other => other,
    };

    public void Dispose() => _workspace.Dispose();
}
