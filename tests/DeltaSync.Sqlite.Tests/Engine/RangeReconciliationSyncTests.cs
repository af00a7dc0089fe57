using DeltaSync.Core.Reporting;
using NodaTime;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>
/// Key-range reconciliation SQLite to SQLite: <c>reconcile</c> (whatever the capture method) and hybrid capture
/// compare in-database range digests, read only the ranges that differ, and repair the destination.
/// </summary>
public sealed class RangeReconciliationSyncTests : IDisposable
{
    private static readonly string LongAgo = ItemsTable.Timestamp(Instant.FromUtc(2001, 1, 1, 0, 0));

    private readonly SyncWorkspace _workspace = new();

    [Fact]
    public async Task Reconcile_removes_hard_deletes_a_timestamp_cursor_cannot_see()
    {
        var items = Items(1_000);
        var config = _workspace.Configure(SyncYaml.Config("{name: items, cdc_method: timestamp}", blocks: "cdc: {hybrid: {ranges: 8, leaf_rows: 32}}"));
        await _workspace.RunCompletedAsync(config);
        foreach (var id in new long[] { 3, 499, 1_000 })
        {
            items.Delete(id);
        }

        var unseen = await _workspace.RunCompletedAsync(config);
        Assert.Equal(0, unseen.Statistics.RecordsDeleted);

        var report = await _workspace.RunCompletedAsync(config, reconcile: true);

        Assert.Equal(3, report.Statistics.RecordsDeleted);
        Assert.Equal("reconcile", report.Metadata.Mode);
        var figures = Figures(report);
        Assert.Equal(3, figures.RowsDeleted);
        Assert.Equal(0, figures.RowsUpserted);
        Assert.True(figures.RowsFetched <= 3 * 2 * 32, $"{figures.RowsFetched} rows fetched");
        _workspace.AssertSynced(ItemsTable.Name, "id");
        // The cursor did not move: the next ordinary pass has nothing to do.
        Assert.Equal(unseen.Tables.Single().Position, report.Tables.Single().Position);
        Assert.Equal(0, SyncWorkspace.Writes(await _workspace.RunCompletedAsync(config)));
    }

    [Fact]
    public async Task Hybrid_repairs_a_backdated_update_and_rows_changed_or_deleted_at_the_destination()
    {
        var items = Items(2_000);
        var config = _workspace.Configure(SyncYaml.Config("{name: items, cdc_method: hybrid}", blocks: "cdc: {hybrid: {base: timestamp, reconcile_interval: 0s, ranges: 4, leaf_rows: 16}}"));
        await _workspace.RunCompletedAsync(config);

        items.Update(77, "backdated", "beyond the lookback", updatedAt: LongAgo);
        _workspace.Destination.Execute("DELETE FROM items WHERE id = 1500");
        _workspace.Destination.Execute("UPDATE items SET name = 'edited at the destination' WHERE id = 1999");
        var report = await _workspace.RunCompletedAsync(config);

        _workspace.AssertSynced(ItemsTable.Name, "id");
        var figures = Figures(report);
        Assert.Equal(3, figures.RowsUpserted);
        Assert.Equal(0, figures.RowsDeleted);
        Assert.True(figures.RowsFetched <= 3 + (3 * 2 * 16), $"{figures.RowsFetched} rows fetched");
        Assert.StartsWith("hybrid:", report.Tables.Single().Position, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_drift_nothing_is_fetched_beyond_one_digest()
    {
        Items(500);
        var config = _workspace.Configure(SyncYaml.Config("{name: items, cdc_method: timestamp}"));
        await _workspace.RunCompletedAsync(config);

        var report = await _workspace.RunCompletedAsync(config, reconcile: true);

        var figures = Figures(report);
        Assert.Equal(1, figures.RangesCompared);
        Assert.Equal(0, figures.RangesDiffering);
        Assert.Equal(0, figures.RowsFetched);
        Assert.Equal(32, figures.BytesFetched);
        Assert.Equal(0, SyncWorkspace.Writes(report));
    }

    [Fact]
    public async Task Composite_text_keys_are_reconciled()
    {
        _workspace.Source.Execute("""
            CREATE TABLE stock (region TEXT NOT NULL, sku TEXT NOT NULL, bin INTEGER NOT NULL, qty INTEGER, updated_at TEXT,
              PRIMARY KEY (region, sku, bin))
            """);
        _workspace.Source.Transaction(execute =>
        {
            foreach (var region in new[] { "eu", "us", "\u00e9t\u00e9", "Z" })
            {
                for (var i = 0; i < 300; i++)
                {
                    execute("INSERT INTO stock VALUES ($r, $s, $b, $q, '2020-01-01T00:00:00Z')", [("$r", region), ("$s", "sku-" + (i % 50)), ("$b", (long)i), ("$q", (long)i)]);
                }
            }
        });
        var config = _workspace.Configure(SyncYaml.Config("{name: stock, cdc_method: timestamp}", blocks: "cdc: {hybrid: {ranges: 4, leaf_rows: 8}}"));
        await _workspace.RunCompletedAsync(config);

        _workspace.Source.Execute("DELETE FROM stock WHERE region = 'us' AND bin IN (5, 250)");
        _workspace.Source.Execute("UPDATE stock SET qty = -1 WHERE region = '\u00e9t\u00e9' AND bin = 17");
        _workspace.Destination.Execute("DELETE FROM stock WHERE region = 'Z' AND bin = 299");
        var report = await _workspace.RunCompletedAsync(config, reconcile: true);

        _workspace.AssertSynced("stock", "region", "sku", "bin");
        var figures = Figures(report);
        Assert.Equal(2, figures.RowsDeleted);
        Assert.Equal(2, figures.RowsUpserted);
    }

    public void Dispose() => _workspace.Dispose();

    private ItemsTable Items(int rows)
    {
        var items = new ItemsTable(_workspace.Source);
        items.Create();
        items.InsertMany(1, rows);
        return items;
    }

    private static ReconciliationReport Figures(SyncReport report)
    {
        var figures = report.Tables.Single().Reconciliation;
        Assert.True(figures is not null, "the report has no reconciliation figures: " + SyncWorkspace.Describe(report) + " warnings: " + string.Join(" | ", report.Warnings));
        return figures;
    }
}
