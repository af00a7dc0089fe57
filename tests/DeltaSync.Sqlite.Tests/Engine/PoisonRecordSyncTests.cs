using System.Globalization;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>
/// Records the destination refuses (a CHECK constraint the source does not have) are bisected out of their batch into
/// the dead-letter queue; every other record of the batch commits, and the checkpoint moves on.
/// </summary>
public sealed class PoisonRecordSyncTests
{
    private static readonly long[] Refused = Enumerable.Range(1, 50).Where(i => i % 7 == 3).Select(i => (long)i).ToArray();

    [Theory]
    [InlineData("timestamp")]
    [InlineData("polling")]
    [InlineData("trigger")]
    public async Task Records_the_destination_refuses_go_to_the_dead_letter_queue_and_the_rest_of_each_batch_commits(string method)
    {
        using var workspace = new SyncWorkspace();
        var items = new ItemsTable(workspace.Source);
        items.Create();
        items.InsertMany(1, 50);
        CreateDestinationRefusingQtyThree(workspace);
        var config = workspace.Configure(SyncYaml.Config($"{{name: items, cdc_method: {method}}}", batchSize: 10));

        var report = await workspace.RunAsync(config);

        Assert.Equal("partial", report.Metadata.Status);
        Assert.Equal(50 - Refused.Length, report.Statistics.RecordsInserted);
        Assert.Equal(Refused.Select(Id), report.Errors.Select(e => long.Parse(e.RecordId!, CultureInfo.InvariantCulture)).Order().Select(Id));
        Assert.All(report.Errors, e => Assert.Contains("CHECK constraint failed", e.Message, StringComparison.Ordinal));
        await using (var state = await workspace.OpenStateAsync())
        {
            var letters = await state.ReadDeadLettersAsync(SyncWorkspace.Stream("items"), 100, CancellationToken.None);
            Assert.Equal(Refused.Select(Id), letters.Select(l => long.Parse(l.RecordId, CultureInfo.InvariantCulture)).Order().Select(Id));
            Assert.All(letters, l => Assert.Equal(Core.Model.ErrorClass.Permanent, l.ErrorClass));
            Assert.All(letters, l => Assert.Contains("\"qty\":3", l.RawRecord, StringComparison.Ordinal));
        }

        var columns = workspace.Source.Columns("items");
        SyncWorkspace.AssertSameRows(workspace.Source.Dump("items", columns, ["id"], "qty <> 3"), workspace.Destination.Dump("items", columns, ["id"]), "items");
        Assert.False((await workspace.NewestCheckpointAsync("items")).Position.IsNone);

        // Nothing changed: the refused records are not queued or reported again, and nothing else is written.
        var again = await workspace.RunAsync(config);
        Assert.Equal(0, SyncWorkspace.Writes(again));
        Assert.Empty(again.Errors);
        Assert.Equal("completed", again.Metadata.Status);
    }

    private static string Id(long id) => id.ToString(CultureInfo.InvariantCulture);

    private static void CreateDestinationRefusingQtyThree(SyncWorkspace workspace) => workspace.Destination.Execute("""
        CREATE TABLE items (
          id INTEGER PRIMARY KEY,
          name TEXT NOT NULL,
          price REAL,
          qty INTEGER CHECK (qty IS NULL OR qty <> 3),
          data BLOB,
          note,
          updated_at TEXT,
          row_version INTEGER NOT NULL DEFAULT 1,
          seq INTEGER NOT NULL)
        """);
}
