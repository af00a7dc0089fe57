using Xunit.Abstractions;
namespace DeltaSync.Sqlite.Tests.Engine;
public sealed class ScratchTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public async Task Scratch(int hourAgo)
    {
        using var ws = new SyncWorkspace();
        var items = new ItemsTable(ws.Source);
        if (hourAgo == 1) items.Now = () => NodaTime.SystemClock.Instance.GetCurrentInstant() - NodaTime.Duration.FromHours(1);
        items.Create();
        items.InsertMany(1, 10);
        var config = ws.Configure(SyncYaml.Config("{name: items, cdc_method: version, sequence_field: seq}", batchSize: 4));
        var r1 = await ws.RunCompletedAsync(config);
        output.WriteLine($"r1 {SyncWorkspace.Describe(r1)} pos {r1.Tables[0].Position} processed {r1.Statistics.RecordsProcessed}");
        ws.Source.Execute("ALTER TABLE items ADD COLUMN color TEXT NOT NULL DEFAULT 'red'");
        var r2 = await ws.RunCompletedAsync(config);
        output.WriteLine($"r2 {SyncWorkspace.Describe(r2)} pos {r2.Tables[0].Position} processed {r2.Statistics.RecordsProcessed} {string.Join(";", r2.Warnings)}");
        ws.AssertSynced(ItemsTable.Name, "id");
    }
}
public sealed class Scratch2Tests(ITestOutputHelper output)
{
    [Fact]
    public void Sql()
    {
        using var ws = new SyncWorkspace();
        var items = new ItemsTable(ws.Source);
        items.Create();
        items.InsertMany(1, 3);
        using var c = new Microsoft.Data.Sqlite.SqliteConnection("Data Source=" + ws.Source.Path);
        c.Open();
        foreach (var v in new[] { long.MinValue, long.MinValue + 1, -1000L })
        {
            using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT count(*) FROM (SELECT id, (CASE WHEN typeof(\"seq\") = 'integer' THEN \"seq\" ELSE NULL END) AS __c FROM items) WHERE __c IS NULL OR __c >= $v";
            cmd.Parameters.AddWithValue("$v", v);
            output.WriteLine($"{v}: {cmd.ExecuteScalar()}");
            cmd.CommandText = "SELECT count(*) FROM items WHERE seq >= $v";
            output.WriteLine($"plain {v}: {cmd.ExecuteScalar()}");
        }
    }
}
public sealed class Scratch3Tests(ITestOutputHelper output)
{
    [Fact]
    public async Task Capture()
    {
        using var ws = new SyncWorkspace();
        var items = new ItemsTable(ws.Source);
        items.Create();
        items.InsertMany(1, 10);
        var config = ws.Configure(SyncYaml.Config("{name: items, cdc_method: version, sequence_field: seq}", batchSize: 4));
        var plan = DeltaSync.Core.Connectors.TablePlan.FromConfig(config)[0];
        var source = new DeltaSync.Sqlite.Source.SqliteSource(ws.Source.Path, NodaTime.SystemClock.Instance);
        var schema = await source.DescribeTableAsync(plan.ToTableOptions(), default);
        await using var dest = new DeltaSync.Sqlite.Destination.SqliteDestination(ws.Destination.Path);
        await using var capture = source.CreateCapture(new DeltaSync.Core.Connectors.CaptureRequest(plan, schema, DeltaSync.Core.Model.Position.None, 4, dest.Ledger, new DeltaSync.Core.Ledger.LedgerScope("items", "source"), null));
        await foreach (var b in capture.ReadAsync(default))
        {
            output.WriteLine($"batch {b.Events.Count} pos {b.CheckpointPosition} rows {b.RowsRead}");
        }
    }
}
