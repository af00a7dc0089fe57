namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>A TRUNCATE captured from one source of a table two sources write (WAL capture, PostgreSQL destination).</summary>
public sealed class MultiSourceTruncateTests
{
    private const string Customers = """
        CREATE TABLE customers (
          id bigint PRIMARY KEY,
          name text NOT NULL,
          updated_at timestamptz NOT NULL DEFAULT now() - interval '1 minute');
        """;

    [Fact]
    public async Task A_truncate_at_one_source_deletes_only_what_that_source_alone_held()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await using var shop = await PgDatabase.CreateAsync("src2");
        await w.Source.ExecuteAsync(Customers + "INSERT INTO customers (id, name) VALUES (1, 'crm only'), (2, 'both');");
        await shop.ExecuteAsync(Customers + "INSERT INTO customers (id, name) VALUES (2, 'both'), (3, 'shop only');");
        var config = w.Configure($"""
            sync:
              sources:
                - {"{"}name: crm, connection: "{w.Source.Uri}", tables: [customers], cdc_method: changelog{"}"}
                - {"{"}name: shop, connection: "{shop.Uri}", tables: [customers]{"}"}
              destination: {"{"}connection: "{w.Destination.Uri}"{"}"}
            cdc:
              changelog: {"{"}type: postgres_wal{"}"}
            conflict_resolution: {"{"}default_strategy: last_write_wins{"}"}
            """);
        await w.RunCompletedAsync(config);
        Assert.Equal(3L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM customers"));

        await w.Source.ExecuteAsync("TRUNCATE customers");
        var report = await w.RunCompletedAsync(config);

        // Row 1 was crm's alone: deleted. Row 2 shop still holds, row 3 is shop's: both stay.
        Assert.Equal(["2", "3"], await w.Destination.RowsAsync("SELECT id FROM customers ORDER BY id"));
        Assert.Equal(1, report.Statistics.RecordsDeleted);
        Assert.Contains(report.Warnings, m => m.Contains("truncated at source 'crm'", StringComparison.Ordinal) && m.Contains("1 record(s) only this source held were deleted", StringComparison.Ordinal) && m.Contains("1 record(s) other sources still hold were kept", StringComparison.Ordinal));
        // The deleted record's base records the delete; the kept one's is untouched.
        var bodies = await w.Destination.RowsAsync("SELECT body::text FROM deltasync.records WHERE destination_table = 'customers' ORDER BY key");
        Assert.Equal([false, true, true], bodies.Select(b => Core.Conflicts.RecordBaseCodec.Decode("k", b).Exists).Order().ToList());

        // crm re-loads: its rows are fresh inserts (its ledger entries were tombstoned), merged with shop's as usual.
        await w.Source.ExecuteAsync("INSERT INTO customers (id, name) VALUES (1, 'crm again'), (2, 'both')");
        var reload = await w.RunCompletedAsync(config);
        Assert.Equal(0, reload.Statistics.ConflictsDetected);
        Assert.Equal(["1|crm again", "2|both", "3|shop only"], await w.Destination.RowsAsync("SELECT id || '|' || name FROM customers ORDER BY id"));

        // A change from shop after all that is merged as usual.
        await shop.ExecuteAsync("UPDATE customers SET name = 'both, renamed', updated_at = now() WHERE id = 2");
        await w.RunCompletedAsync(config);
        Assert.Equal("both, renamed", await w.Destination.ScalarAsync<string>("SELECT name FROM customers WHERE id = 2"));
    }
}
