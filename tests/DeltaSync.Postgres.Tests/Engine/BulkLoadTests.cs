using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.Reporting;
using DeltaSync.Core.State;
using DeltaSync.Postgres.Destination;
using NodaTime;

namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>
/// PostgreSQL → PostgreSQL initial loads by raw binary COPY pass-through (<c>initial_load: binary_copy</c> in the
/// report): the copy equals the source value for value, its SQL-built ledger lets later passes recognise every
/// unchanged row and apply only real changes, and anything the pass-through cannot reproduce goes through the pipeline.
/// </summary>
public sealed class BulkLoadTests
{
    private const string Items = """
        CREATE TABLE items (
          id bigint PRIMARY KEY,
          name text,
          code varchar(40) NOT NULL,
          price numeric(12,2),
          ratio double precision,
          qty integer,
          small smallint,
          active boolean,
          tags text[],
          counts integer[],
          attrs jsonb,
          ref uuid,
          blob bytea,
          born date,
          local_at timestamp,
          seq bigint NOT NULL,
          rev integer NOT NULL DEFAULT 1,
          updated_at timestamptz);
        CREATE SEQUENCE items_seq;
        """;

    private const string Dump =
        "SELECT id, name, code, price::text, ratio::text, qty, small, active, tags::text, counts::text, attrs::text, ref::text, " +
        "encode(blob, 'hex'), born::text, local_at::text, seq, rev, updated_at::text FROM items ORDER BY id";

    /// <summary>Rows with every supported type; every ninth row has NULLs in every nullable column (updated_at too).</summary>
    private static Task SeedAsync(PgDatabase db, int from, int count, string updatedAt = "now() - interval '1 minute'") =>
        db.ExecuteAsync($"""
            INSERT INTO items (id, name, code, price, ratio, qty, small, active, tags, counts, attrs, ref, blob, born, local_at, seq, updated_at)
            SELECT g,
                   CASE WHEN g % 9 = 0 THEN NULL ELSE 'näme ' || g || ' ✓' END,
                   'c-' || g,
                   CASE WHEN g % 9 = 0 THEN NULL ELSE g * 1.25 - 1000 END,
                   CASE WHEN g % 9 = 0 THEN NULL ELSE g / 7.0 END,
                   CASE WHEN g % 9 = 0 THEN NULL ELSE g % 1000 END,
                   CASE WHEN g % 9 = 0 THEN NULL ELSE (g % 300)::smallint END,
                   CASE WHEN g % 9 = 0 THEN NULL ELSE g % 2 = 0 END,
                   CASE WHEN g % 9 = 0 THEN NULL ELSE ARRAY['t' || g, NULL, ''] END,
                   CASE WHEN g % 9 = 0 THEN NULL ELSE ARRAY[g, -g] END,
                   CASE WHEN g % 9 = 0 THEN NULL ELSE jsonb_build_object('n', g, 'nested', jsonb_build_array(g, 'x', 1.50)) END,
                   CASE WHEN g % 9 = 0 THEN NULL ELSE md5(g::text)::uuid END,
                   CASE WHEN g % 9 = 0 THEN NULL ELSE decode(md5(g::text) || '00ff', 'hex') END,
                   CASE WHEN g % 9 = 0 THEN NULL ELSE date '2024-01-01' + g END,
                   CASE WHEN g % 9 = 0 THEN NULL ELSE timestamp '2024-03-31 01:30:00.123456' + g * interval '17 minutes' END,
                   nextval('items_seq'),
                   CASE WHEN g % 9 = 0 THEN NULL ELSE {updatedAt} + g * interval '1 microsecond' END
            FROM generate_series({from}, {from + count - 1}) AS g
            """);

    private static TableReport Table(SyncReport report) => Assert.Single(report.Tables);

    [Theory]
    [InlineData("{name: items, cdc_method: timestamp}")]
    [InlineData("{name: items, cdc_method: version, sequence_field: seq}")]
    public async Task Initial_load_is_a_binary_copy_and_later_passes_apply_only_real_changes(string table)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        await SeedAsync(w.Source, 1, 3000);
        var config = w.Config(table, batchSize: 700);

        var first = await w.RunCompletedAsync(config);
        Assert.Equal("binary_copy", Table(first).InitialLoad);
        Assert.Equal(3000, first.Statistics.RecordsInserted);
        Assert.Equal(3000, Table(first).RecordsProcessed);
        await w.AssertSameAsync(Dump);
        // The load writes no ledger row: its entries are a rule over the table's rows.
        Assert.Equal(0L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger"));
        Assert.Equal(1L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger_scopes WHERE bulk_rows IS NOT NULL"));

        // Unchanged: every row the pass re-reads (the lookback's for a timestamp cursor, where they all are) must be
        // recognised by the entry the rule gives it, not rewritten.
        var unchanged = await w.RunCompletedAsync(config);
        Assert.Null(Table(unchanged).InitialLoad);
        Assert.Equal(0, PgSyncWorkspace.Writes(unchanged));
        Assert.Equal(0L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger"));

        // Updates of keys up to the largest one (2500 is above every key with an entry of its own: none) are updates.
        await w.Source.ExecuteAsync("UPDATE items SET price = price + 1, rev = rev + 1, seq = nextval('items_seq'), updated_at = now() WHERE id IN (5, 9, 2500)");
        await SeedAsync(w.Source, 5001, 2, "now()");
        var changed = await w.RunCompletedAsync(config);
        Assert.Equal(2, changed.Statistics.RecordsInserted);
        Assert.Equal(3, changed.Statistics.RecordsUpdated);
        await w.AssertSameAsync(Dump);
        // The five records written have entries of their own, which shadow the rule; they keep the source's digest the
        // scope compares by.
        Assert.Equal(5L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger WHERE source_digest"));
        Assert.Equal(0L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger WHERE source_digest IS NOT TRUE"));

        var again = await w.RunCompletedAsync(config);
        Assert.Equal(0, PgSyncWorkspace.Writes(again));
    }

    [Fact]
    public async Task Timestamp_load_checkpoints_the_cursor_it_would_have_and_counts_null_timestamps()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        await SeedAsync(w.Source, 1, 90, "now() - interval '2 days'");
        var config = w.Config("{name: items, cdc_method: timestamp}");

        var report = await w.RunCompletedAsync(config);

        var items = Table(report);
        Assert.Equal("binary_copy", items.InitialLoad);
        Assert.Equal(10, items.NullTimestamps?.RowHash);
        Assert.StartsWith("cursor:", items.Position, StringComparison.Ordinal);
        var newest = await w.Source.ScalarAsync<DateTime>("SELECT max(updated_at) FROM items");
        Assert.Equal(newest, DateTime.Parse(items.HighWaterMark!, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AdjustToUniversal | System.Globalization.DateTimeStyles.AssumeUniversal));

        // A row committed now, after the load, is the next pass's only write: the cursor did not skip past it.
        await SeedAsync(w.Source, 200, 1, "now()");
        var next = await w.RunCompletedAsync(config);
        Assert.Equal(1, next.Statistics.RecordsInserted);
        Assert.Equal(0, next.Statistics.RecordsUpdated);
        await w.AssertSameAsync(Dump);
    }

    [Fact]
    public async Task Polling_loads_by_binary_copy_and_its_passes_read_whole_rows_only_for_what_changed()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        await SeedAsync(w.Source, 1, 3000);
        // 700 a batch: the changed rows are read by key 700 at a time.
        var config = w.Config("{name: items, cdc_method: polling}", batchSize: 700);

        var first = await w.RunCompletedAsync(config);
        Assert.Equal("binary_copy", Table(first).InitialLoad);
        Assert.Equal(3000, first.Statistics.RecordsInserted);
        await w.AssertSameAsync(Dump);
        Assert.Equal(0L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger"));

        var unchanged = await w.RunCompletedAsync(config);
        Assert.Equal(0, PgSyncWorkspace.Writes(unchanged));
        Assert.Equal(0L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger"));

        // Updates without any timestamp or version moving (only polling sees them), spread over several fetches and
        // batches, hard deletes, inserts between and after the loaded keys.
        await w.Source.ExecuteAsync("""
            UPDATE items SET name = 'p ' || id WHERE id % 3 = 0 AND id <= 2400;
            DELETE FROM items WHERE id IN (2, 1000, 1001, 3000);
            """);
        await SeedAsync(w.Source, 5001, 3);
        var changed = await w.RunCompletedAsync(config);
        Assert.Equal((3, 800, 4), (changed.Statistics.RecordsInserted, changed.Statistics.RecordsUpdated, changed.Statistics.RecordsDeleted));
        await w.AssertSameAsync(Dump);
        // What was written keeps the source's digest, so the next pass reads none of these rows again.
        Assert.Equal(803L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger WHERE source_digest AND NOT deleted"));
        Assert.Equal(4L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger WHERE deleted"));

        var again = await w.RunCompletedAsync(config);
        Assert.Equal(0, PgSyncWorkspace.Writes(again));

        // An entry recorded by another hash than the source's digest (the engine's, by a capture that had none) cannot be
        // compared by digest: its row is read in full, written once (idempotently) and its entry takes the digest.
        await w.Destination.ExecuteAsync("""
            UPDATE deltasync.ledger l SET row_hash = 0, source_digest = NULL WHERE l.key IN (SELECT key FROM deltasync.ledger WHERE source_digest AND NOT deleted ORDER BY key LIMIT 5)
            """);
        var renamed = await w.RunCompletedAsync(config);
        Assert.Equal(5, PgSyncWorkspace.Writes(renamed));
        Assert.Equal(803L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger WHERE source_digest AND NOT deleted"));
        Assert.Equal(0, PgSyncWorkspace.Writes(await w.RunCompletedAsync(config)));
        await w.AssertSameAsync(Dump);
    }

    [Fact]
    public async Task A_polling_pass_by_digests_outlasts_the_sources_idle_in_transaction_timeout_while_batches_apply()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        await SeedAsync(w.Source, 1, 3000);
        var config = w.Config("{name: items, cdc_method: polling}", batchSize: 300);
        Assert.Equal("binary_copy", Table(await w.RunCompletedAsync(config)).InitialLoad);

        // The pass stays open at the source while the pipeline applies what it read (a slow destination here): a server
        // that ends sessions idle in a transaction must not end the pass's (a cursor between fetches would be idle).
        await w.Source.ExecuteAsync($"ALTER DATABASE \"{w.Source.Name}\" SET idle_in_transaction_session_timeout = '300ms'");
        await w.Destination.ExecuteAsync("""
            CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.002); RETURN NEW; END $$;
            CREATE TRIGGER slow BEFORE UPDATE ON items FOR EACH ROW EXECUTE FUNCTION slow();
            """);
        await w.Source.ExecuteAsync("UPDATE items SET qty = -1 WHERE id <= 1500");

        var changed = await w.RunCompletedAsync(config);

        Assert.Equal(1500, changed.Statistics.RecordsUpdated);
        await w.AssertSameAsync(Dump);
    }

    [Fact]
    public async Task Per_row_versions_load_through_the_pipeline_and_their_later_passes_write_nothing()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        await SeedAsync(w.Source, 1, 1000);
        var config = w.Config("{name: items, cdc_method: version, version_field: rev}", batchSize: 300);

        var first = await w.RunCompletedAsync(config);
        var unchanged = await w.RunCompletedAsync(config);

        Assert.Null(Table(first).InitialLoad);
        Assert.Equal(1000, first.Statistics.RecordsInserted);
        Assert.Equal(0, PgSyncWorkspace.Writes(unchanged));
        // The engine's own row hashes: nothing for the capture to digest on the source on each pass.
        Assert.Equal(0L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger WHERE source_digest"));
        await w.AssertSameAsync(Dump);
    }

    [Fact]
    public async Task Text_and_composite_keys_get_the_ledger_keys_the_engine_computes()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE pairs (region text, code varchar(8), n int, PRIMARY KEY (region, code));
            INSERT INTO pairs SELECT r, c, row_number() OVER () FROM unnest(ARRAY['a', 'B', 'é', 'Z', 'ab', 'a b', '日本']) r, unnest(ARRAY['x', 'X', '1', 'é']) c;
            """);
        var config = w.Config("{name: pairs, cdc_method: version, sequence_field: n}", batchSize: 5);
        var first = await w.RunCompletedAsync(config);
        Assert.Equal("binary_copy", Table(first).InitialLoad);

        await w.Source.ExecuteAsync("UPDATE pairs SET n = n + 100 WHERE code = 'X'");
        var report = await w.RunCompletedAsync(config);

        // Wrong ledger keys would show as inserts of keys the ledger does not know.
        Assert.Equal(0, report.Statistics.RecordsInserted);
        Assert.Equal(7, report.Statistics.RecordsUpdated);
        await w.AssertSameAsync("SELECT region, code, n FROM pairs ORDER BY region COLLATE \"C\", code COLLATE \"C\"");
    }

    [Fact]
    public async Task A_destination_column_of_another_type_falls_back_to_the_pipeline()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        await SeedAsync(w.Source, 1, 500);
        await w.Destination.ExecuteAsync(Items.Replace("price numeric(12,2)", "price numeric(14,4)", StringComparison.Ordinal));
        var config = w.Config("{name: items, cdc_method: timestamp}");

        var first = await w.RunCompletedAsync(config);

        Assert.Null(Table(first).InitialLoad);
        Assert.Equal(500, first.Statistics.RecordsInserted);
        await w.AssertSameAsync("SELECT id, name, price::numeric(14,4)::text, attrs::text, updated_at::text FROM items ORDER BY id");
        var again = await w.RunCompletedAsync(config);
        Assert.Equal(0, PgSyncWorkspace.Writes(again));
    }

    [Fact]
    public async Task A_row_the_destination_refuses_rolls_the_copy_back_and_the_pipeline_dead_letters_only_that_row()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        await SeedAsync(w.Source, 1, 400);
        await w.Destination.ExecuteAsync(Items + "ALTER TABLE items ADD CONSTRAINT small_qty CHECK (qty <> 123);");
        var config = w.Config("{name: items, cdc_method: timestamp}");

        var report = await w.RunAsync(config);

        Assert.Equal("partial", report.Metadata.Status);
        Assert.Null(Table(report).InitialLoad);
        Assert.Contains(report.Warnings, x => x.Contains("bulk load", StringComparison.Ordinal));
        Assert.Equal(399, report.Statistics.RecordsInserted);
        Assert.Equal(399L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM items"));
        Assert.Equal(0L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM items WHERE id = 123"));
    }

    [Fact]
    public async Task A_bulk_loaded_table_switched_to_polling_is_compared_with_its_rule_and_entries_alike()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        await SeedAsync(w.Source, 1, 2000);
        var timestamp = w.Config("{name: items, cdc_method: timestamp}", batchSize: 300);
        Assert.Equal("binary_copy", Table(await w.RunCompletedAsync(timestamp)).InitialLoad);
        await w.Source.ExecuteAsync("UPDATE items SET qty = -1, updated_at = now() WHERE id = 7");
        Assert.Equal(1, (await w.RunCompletedAsync(timestamp)).Statistics.RecordsUpdated);

        // Changes a timestamp cursor cannot see: a hard delete, an update that keeps updated_at. A full scan of the
        // ledger (the rule's entries with id 7's own, in key order) against the source finds exactly these.
        await w.Source.ExecuteAsync("DELETE FROM items WHERE id IN (11, 1999); UPDATE items SET qty = -2 WHERE id = 13");
        var polling = await w.RunCompletedAsync(w.Config("{name: items, cdc_method: polling}", batchSize: 300));

        Assert.Contains(polling.Warnings, x => x.Contains("changed cdc_method", StringComparison.Ordinal));
        Assert.Equal((0, 1, 2), (polling.Statistics.RecordsInserted, polling.Statistics.RecordsUpdated, polling.Statistics.RecordsDeleted));
        await w.AssertSameAsync(Dump);
    }

    [Fact]
    public async Task A_bulk_loaded_table_switched_to_hybrid_on_a_timestamp_base_rewrites_nothing_unchanged()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        await SeedAsync(w.Source, 1, 1000);
        Assert.Equal("binary_copy", Table(await w.RunCompletedAsync(w.Config("{name: items, cdc_method: timestamp}", batchSize: 300))).InitialLoad);

        // The new method re-reads the table from the start: rows the load wrote, unchanged, are recognised by the rule's
        // digests, as a timestamp or polling pass recognises them.
        var hybrid = await w.RunCompletedAsync(w.Config("{name: items, cdc_method: hybrid}", batchSize: 300, blocks: """
            cdc:
              hybrid:
                base: timestamp
                reconcile_interval: "0s"
            """));

        Assert.Contains(hybrid.Warnings, x => x.Contains("changed cdc_method", StringComparison.Ordinal));
        Assert.Equal(0, PgSyncWorkspace.Writes(hybrid));
        await w.AssertSameAsync(Dump);
    }

    [Fact]
    public async Task A_truncate_after_a_bulk_load_keeps_every_loaded_record_as_a_tombstone_and_state_reset_drops_the_rule()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE t (id bigint PRIMARY KEY, v text, updated_at timestamptz NOT NULL);
            INSERT INTO t SELECT g, 'v' || g, now() - interval '1 minute' FROM generate_series(1, 500) g;
            """);
        Assert.Equal("binary_copy", Table(await w.RunCompletedAsync(w.Config("{name: t, cdc_method: timestamp}"))).InitialLoad);
        await w.Source.ExecuteAsync("UPDATE t SET v = 'changed', updated_at = now() WHERE id = 9");
        Assert.Equal(1, (await w.RunCompletedAsync(w.Config("{name: t, cdc_method: timestamp}"))).Statistics.RecordsUpdated);

        // A TRUNCATE as the trigger and log captures deliver it: the table emptied in the batch's transaction.
        await using var destination = new PostgresDestination(w.Destination.Uri);
        var schema = new TableSchema("t", [new ColumnSchema("id", "bigint", DataKind.Integer, false, 1), new ColumnSchema("v", "text", DataKind.Text, true, 0)], ["id"]) { Dialect = "postgresql" };
        await destination.PrepareTableAsync("t", schema, CancellationToken.None);
        var at = new Position("cursor", "x");
        var checkpoint = new Checkpoint("other/t", "t", 1, at, "trigger", null, null, "fp", CheckpointCounters.Zero, 0, "run", SystemClock.Instance.GetCurrentInstant());
        var unit = new ApplyUnit(schema, "t", new LedgerScope("t", "source"), [], [], checkpoint) { TruncateFirst = true };
        Assert.Equal(500, (await destination.ApplyAsync(unit, CancellationToken.None)).Deleted);

        Assert.Equal(0L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM t"));
        // The rule read the rows the TRUNCATE removed: it was written out as entries first, now all tombstones.
        Assert.Equal(500L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger WHERE deleted"));
        Assert.Equal(0L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger_scopes WHERE bulk_rows IS NOT NULL"));

        await destination.ResetStreamAsync("sync/t", new LedgerScope("t", "source"), CancellationToken.None);
        Assert.Equal(0L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger"));
    }

    [Fact]
    public async Task A_second_source_writing_a_bulk_loaded_table_writes_the_first_ones_entries_out_first()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await using var shop = await PgDatabase.CreateAsync("src2");
        const string Customers = """
            CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text, updated_at timestamptz NOT NULL);
            INSERT INTO customers SELECT g, 'n' || g, 'e' || g, now() - interval '10 minutes' FROM generate_series(1, 300) g;
            """;
        await w.Source.ExecuteAsync(Customers);
        await shop.ExecuteAsync(Customers);
        Assert.Equal("binary_copy", Table(await w.RunCompletedAsync(w.Config("{name: customers, cdc_method: timestamp}"))).InitialLoad);

        var both = w.TwoSources(shop, "customers");
        await w.RunCompletedAsync(both);

        // shop's writes may rewrite rows whose entries for 'source' were the rule's: they hold what the load wrote.
        var scope = "(SELECT scope_id FROM deltasync.ledger_scopes WHERE destination_table = 'customers' AND source = 'source')";
        Assert.Equal(300L, await w.Destination.ScalarAsync<long>($"SELECT count(*) FROM deltasync.ledger WHERE scope_id = {scope}"));
        Assert.Equal(0L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger_scopes WHERE bulk_rows IS NOT NULL"));

        await w.Source.ExecuteAsync("UPDATE customers SET email = 'src', updated_at = now() - interval '2 minutes' WHERE id = 1");
        await shop.ExecuteAsync("UPDATE customers SET name = 'shop', updated_at = now() - interval '1 minute' WHERE id = 1");
        var report = await w.RunCompletedAsync(both);
        // Whichever source's batch merges first, 'source' changed only the email: the rows it loaded are its view of them.
        Assert.Equal(0, report.Statistics.ConflictsDetected);
        Assert.Equal("shop|src", await w.Destination.ScalarAsync<string>("SELECT name || '|' || email FROM customers WHERE id = 1"));
    }

    [Fact]
    public async Task State_reset_drops_a_bulk_load_rule()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        await SeedAsync(w.Source, 1, 100);
        Assert.Equal("binary_copy", Table(await w.RunCompletedAsync(w.Config("{name: items, cdc_method: timestamp}"))).InitialLoad);

        await using var destination = new PostgresDestination(w.Destination.Uri);
        await destination.ResetStreamAsync("sync/items", new LedgerScope("items", "source"), CancellationToken.None);

        Assert.Equal(0L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger_scopes WHERE bulk_rows IS NOT NULL OR source_digests"));
    }

    [Fact]
    public async Task A_full_refresh_into_a_filled_table_goes_through_the_ledger()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        await SeedAsync(w.Source, 1, 300);
        var config = w.Config("{name: items, cdc_method: timestamp}");
        await w.RunCompletedAsync(config);

        var refresh = await w.RunCompletedAsync(config, fullRefresh: true);

        Assert.Null(Table(refresh).InitialLoad);
        Assert.Equal(0, PgSyncWorkspace.Writes(refresh));
        Assert.Equal(300, Table(refresh).RecordsUnchanged);
    }
}
