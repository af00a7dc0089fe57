using DeltaSync.Core.Reporting;

namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>
/// Key-range reconciliation PostgreSQL to PostgreSQL: digests computed by each server, only differing ranges read,
/// drift at either side repaired through the ledger.
/// </summary>
public sealed class RangeReconciliationTests
{
    private const string Items = """
        CREATE TABLE items (id bigint PRIMARY KEY, label text NOT NULL, price numeric(10,2), seen timestamptz, updated_at timestamptz NOT NULL DEFAULT now());
        INSERT INTO items (id, label, price, seen, updated_at)
          SELECT g, 'item ' || g, g * 1.25, timestamptz '2024-05-01 12:00:00+02' + g * interval '1 minute', now() - interval '1 day' FROM generate_series(1, 3000) g;
        """;

    [Fact]
    public async Task Reconcile_removes_hard_deletes_under_timestamp_cdc_and_restores_rows_deleted_at_the_destination()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        var config = w.Config("{name: items, cdc_method: timestamp}", blocks: "cdc: {hybrid: {ranges: 8, leaf_rows: 32}}");
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync("DELETE FROM items WHERE id IN (10, 2000)");
        await w.Destination.ExecuteAsync("DELETE FROM items WHERE id = 2999");
        var report = await w.RunCompletedAsync(config, reconcile: true);

        var figures = Figures(report);
        Assert.Equal(2, figures.RowsDeleted);
        Assert.Equal(1, figures.RowsUpserted);
        Assert.True(figures.RowsFetched <= 1 + (3 * 2 * 32), $"{figures.RowsFetched} rows fetched");
        await w.AssertSameAsync("SELECT id, label, price, seen, updated_at FROM items ORDER BY id");
    }

    [Fact]
    public async Task Hybrid_repairs_a_backdated_update_and_a_destination_edit_and_without_drift_reads_one_digest()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        var config = w.Config("{name: items, cdc_method: hybrid}", blocks: """
            cdc:
              hybrid:
                base: timestamp
                reconcile_interval: "0s"
                ranges: 4
                leaf_rows: 16
            """);
        await w.RunCompletedAsync(config);
        var idle = await w.RunCompletedAsync(config);
        Assert.Equal(1, Figures(idle).RangesCompared);
        Assert.Equal(0, Figures(idle).RowsFetched);

        await w.Source.ExecuteAsync("UPDATE items SET label = 'backdated', updated_at = '2001-01-01' WHERE id = 1234");
        await w.Destination.ExecuteAsync("UPDATE items SET price = -1 WHERE id = 77");
        var report = await w.RunCompletedAsync(config);

        Assert.Equal(2, Figures(report).RowsUpserted);
        await w.AssertSameAsync("SELECT id, label, price, seen, updated_at FROM items ORDER BY id");
    }

    [Fact]
    public async Task Composite_text_keys_are_reconciled()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE stock (region text NOT NULL, sku varchar(20) NOT NULL, bin int NOT NULL, qty int, updated_at timestamptz NOT NULL DEFAULT now() - interval '1 day',
              PRIMARY KEY (region, sku, bin));
            INSERT INTO stock (region, sku, bin, qty)
              SELECT r, 'sku-' || (g % 40), g, g FROM unnest(ARRAY['eu', 'us', 'été', 'Z']) r, generate_series(1, 400) g;
            """);
        var config = w.Config("{name: stock, cdc_method: timestamp}", blocks: "cdc: {hybrid: {ranges: 4, leaf_rows: 8}}");
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync("DELETE FROM stock WHERE region = 'us' AND bin IN (5, 250); UPDATE stock SET qty = -1, updated_at = '2001-01-01' WHERE region = 'été' AND bin = 17");
        await w.Destination.ExecuteAsync("DELETE FROM stock WHERE region = 'Z' AND bin = 399");
        var report = await w.RunCompletedAsync(config, reconcile: true);

        var figures = Figures(report);
        Assert.Equal(2, figures.RowsDeleted);
        Assert.Equal(2, figures.RowsUpserted);
        await w.AssertSameAsync("SELECT region, sku, bin, qty, updated_at FROM stock ORDER BY region COLLATE \"C\", sku COLLATE \"C\", bin");
    }

    /// <summary>
    /// A table outside the search path (and with a quoted name) is reconciled by key-range digests too: the source's
    /// digests looked the table up by its bare name, found nothing, and the run fell back to streaming every source row
    /// against the ledger, which cannot see a row edited or deleted at the destination.
    /// </summary>
    [Fact]
    public async Task A_table_in_another_schema_is_reconciled_by_digests_and_its_destination_drift_repaired()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE SCHEMA sales;
            CREATE TABLE sales."Order Items" (code text, n int, v text, updated_at timestamptz NOT NULL DEFAULT now() - interval '1 day', PRIMARY KEY (code, n));
            INSERT INTO sales."Order Items" (code, n, v) SELECT 'c' || g, g, 'v' FROM generate_series(1, 100) g;
            """);
        var config = w.Config("""{name: 'sales."Order Items"', cdc_method: timestamp}""");
        await w.RunCompletedAsync(config);
        await w.Destination.ExecuteAsync("""UPDATE sales."Order Items" SET v = 'drift' WHERE n = 7; DELETE FROM sales."Order Items" WHERE n = 9""");

        var report = await w.RunCompletedAsync(config, reconcile: true);

        Assert.DoesNotContain(report.Warnings, x => x.Contains("cannot compute key-range digests", StringComparison.Ordinal));
        Assert.Equal(1, Figures(report).RangesDiffering);
        Assert.Equal(2, Figures(report).RowsUpserted);
        await w.AssertSameAsync("""SELECT code, n, v FROM sales."Order Items" ORDER BY n""");
    }

    /// <summary>
    /// Keys of types that take no collation (time, inet) are reconciled: ranges compared them with <c>COLLATE "C"</c>,
    /// which PostgreSQL refuses for them, so the table failed.
    /// </summary>
    [Theory]
    [InlineData("time", "time '00:00' + g * interval '7 minutes 0.5 seconds'", "'00:07:00.5'", "'00:14:01'")]
    [InlineData("inet", "('10.0.' || (g / 256) || '.' || (g % 256))::inet", "'10.0.0.7'", "'10.0.1.3'")]
    public async Task Keys_of_types_without_a_collation_are_reconciled(string type, string key, string edited, string deleted)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync($"""
            CREATE TABLE keyed (id {type} PRIMARY KEY, v text, updated_at timestamptz NOT NULL DEFAULT now() - interval '1 day');
            INSERT INTO keyed (id, v) SELECT {key}, 'v' FROM generate_series(1, 300) g;
            """);
        var config = w.Config("{name: keyed, cdc_method: timestamp}", blocks: "cdc: {hybrid: {ranges: 4, leaf_rows: 8}}");
        await w.RunCompletedAsync(config);
        await w.Destination.ExecuteAsync($"UPDATE keyed SET v = 'drift' WHERE id = {edited}; DELETE FROM keyed WHERE id = {deleted}");

        var report = await w.RunCompletedAsync(config, reconcile: true);

        Assert.Equal(2, Figures(report).RowsUpserted);
        await w.AssertSameAsync("SELECT id::text, v FROM keyed ORDER BY id");
    }

    private static ReconciliationReport Figures(SyncReport report)
    {
        var figures = report.Tables.Single().Reconciliation;
        Assert.True(figures is not null, "the report has no reconciliation figures: " + PgSyncWorkspace.Describe(report) + " warnings: " + string.Join(" | ", report.Warnings));
        return figures;
    }
}
