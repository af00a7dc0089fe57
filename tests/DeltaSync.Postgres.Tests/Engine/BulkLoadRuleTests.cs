using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.Reporting;
using DeltaSync.Core.State;
using DeltaSync.Postgres.Destination;
using NodaTime;

namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>
/// The bulk load's ledger rule (<c>ledger_scopes.bulk_rows</c>) where rows change beside it: a smallint sequence cursor,
/// a relationship's SET NULL, a scan beside another source's batch, a TRUNCATE batch cancelled and retried.
/// </summary>
public sealed class BulkLoadRuleTests
{
    private static TableReport Table(SyncReport report) => Assert.Single(report.Tables);

    private static TableSchema TSchema() => new(
        "t",
        [new ColumnSchema("id", "bigint", DataKind.Integer, false, 1), new ColumnSchema("v", "text", DataKind.Text, true, 0)],
        ["id"]) { Dialect = "postgresql" };

    /// <summary>Table <c>t</c> (50 rows) bulk-loaded by the engine, and a destination of its own prepared for it.</summary>
    private static async Task<PostgresDestination> BulkLoadedAsync(PgSyncWorkspace w)
    {
        await w.Source.ExecuteAsync("""
            CREATE TABLE t (id bigint PRIMARY KEY, v text, updated_at timestamptz);
            INSERT INTO t SELECT g, 'v' || g, now() - interval '1 minute' FROM generate_series(1, 50) g;
            """);
        Assert.Equal("binary_copy", Table(await w.RunCompletedAsync(w.Config("{name: t, cdc_method: timestamp}"))).InitialLoad);
        var destination = new PostgresDestination(w.Destination.Uri);
        await destination.PrepareTableAsync("t", TSchema(), CancellationToken.None);
        return destination;
    }

    private static Checkpoint Checkpoint(string stream, long version) =>
        new(stream, "t", version, new Position("cursor", "x"), "trigger", null, null, "fp", CheckpointCounters.Zero, 0, "run", SystemClock.Instance.GetCurrentInstant());

    [Fact]
    public async Task A_smallint_sequence_cursor_is_bulk_loaded()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE s (id bigint PRIMARY KEY, v text, seq smallint);
            INSERT INTO s SELECT g, 'v' || g, CASE WHEN g % 10 = 0 THEN NULL ELSE g END FROM generate_series(1, 200) g;
            """);
        var config = w.Config("{name: s, cdc_method: version, sequence_field: seq}");

        var first = await w.RunCompletedAsync(config);

        Assert.Equal("binary_copy", Table(first).InitialLoad);
        Assert.Equal(200, first.Statistics.RecordsInserted);
        await w.AssertSameAsync("SELECT * FROM s ORDER BY id");
    }

    [Fact]
    public async Task Set_null_on_a_bulk_loaded_child_is_not_undone_by_a_reread_of_the_unchanged_child()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, is_deleted boolean NOT NULL DEFAULT false, updated_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, total numeric(10, 2), updated_at timestamptz NOT NULL DEFAULT now() - interval '1 minute');
            INSERT INTO customers (id, name) VALUES (1, 'one'), (2, 'two');
            INSERT INTO orders (id, customer_id, total) VALUES (11, 1, 10), (12, 1, 20), (21, 2, 30);
            """);
        var config = w.Configure($$"""
            sync:
              source: {connection: "{{w.Source.Uri}}", tables: [{name: customers, soft_delete: {field: is_deleted, deleted_values: [true]} }, orders]}
              destination: {connection: "{{w.Destination.Uri}}"}
              relationships:
                - {parent: customers, child: orders, foreign_key: customer_id, on_delete: set_null}
            """);
        var first = await w.RunCompletedAsync(config);
        Assert.Equal("binary_copy", first.Tables.Single(t => t.Table == "orders").InitialLoad);

        await w.Source.ExecuteAsync("UPDATE customers SET is_deleted = true, updated_at = now() WHERE id = 1");
        var report = await w.RunCompletedAsync(config);
        Assert.Equal(2L, report.Tables.Single(t => t.Table == "customers").ChildRowsSetNull);
        Assert.Equal(2L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM orders WHERE customer_id IS NULL"));

        // Nothing changed at the source: the orders' lookback re-reads 11 and 12 unchanged. With stored entries they are
        // recognised (their digest is the loaded one); the rule now digests the nulled rows and re-applies them.
        var again = await w.RunCompletedAsync(config);
        Assert.Equal(0, PgSyncWorkspace.Writes(again));
        Assert.Equal(2L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM orders WHERE customer_id IS NULL"));
    }

    [Fact]
    public async Task A_scan_racing_another_sources_batch_does_not_keep_a_dropped_rule_cached()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await using var destination = await BulkLoadedAsync(w);
        var schema = TSchema();
        var loaded = new LedgerScope("t", "source");
        var key = new RecordKey([1000L]);
        // The scan's pipeline has used its scope before (its id is known in this process).
        Assert.True(await destination.Ledger.HasSourceDigestsAsync(loaded, CancellationToken.None));

        // Another source ('shop') inserts record 1000. While its batch is open (after it wrote 'source''s rule out, before
        // its COMMIT), a scan of 'source''s scope runs on its own connection — as a polling pass or a shared TRUNCATE would.
        var unit = new ApplyUnit(
            schema,
            "t",
            new LedgerScope("t", "shop"),
            [new RowWrite(WriteKind.Insert, key, [1000L, "shop's"])],
            [new LedgerEntry(key, Position.None, SystemClock.Instance.GetCurrentInstant(), 42, false)],
            Checkpoint("sync/t-shop", 1))
        {
            BeforeCommit = async ct =>
            {
                await foreach (var _ in destination.Ledger.ScanAsync(loaded, ct))
                {
                    break;
                }
            },
        };
        await destination.ApplyAsync(unit, CancellationToken.None);
        Assert.Equal(0L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger_scopes WHERE bulk_rows IS NOT NULL"));

        // 'source' never had record 1000.
        var found = await destination.Ledger.LookupAsync(loaded, [key, new RecordKey([5L])], CancellationToken.None);
        Assert.False(found.ContainsKey(key), "'source' is said to hold shop's record 1000 (a dropped rule still cached)");
        Assert.True(found.ContainsKey(new RecordKey([5L])));
    }

    [Fact]
    public async Task A_truncate_batch_rolled_back_by_cancellation_does_not_leave_the_rule_unmaterialized_for_the_retry()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await using var destination = await BulkLoadedAsync(w);
        var schema = TSchema();

        // A TRUNCATE batch stopped (Ctrl+C, a lost lease) just before its COMMIT: rolled back.
        using var stop = new CancellationTokenSource();
        var cancelled = new ApplyUnit(schema, "t", new LedgerScope("t", "source"), [], [], Checkpoint("other/t", 1))
        {
            TruncateFirst = true,
            BeforeCommit = _ =>
            {
                stop.Cancel();
                return Task.CompletedTask;
            },
        };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => destination.ApplyAsync(cancelled, stop.Token));
        Assert.Equal(50L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM t"));
        Assert.Equal(1L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger_scopes WHERE bulk_rows IS NOT NULL"));

        // The same TRUNCATE again, in the same process: the loaded records must end as tombstones.
        var retry = new ApplyUnit(schema, "t", new LedgerScope("t", "source"), [], [], Checkpoint("other/t", 1)) { TruncateFirst = true };
        Assert.Equal(50, (await destination.ApplyAsync(retry, CancellationToken.None)).Deleted);
        Assert.Equal(50L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger WHERE deleted"));
        Assert.Equal(0L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger_scopes WHERE bulk_rows IS NOT NULL"));
    }
}
