using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using NodaTime;

namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>Log-based capture through logical replication (<c>cdc_method: changelog</c>, <c>postgres_wal</c>), end to end.</summary>
public sealed class WalCaptureTests
{
    private const string Accounts = """
        CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL DEFAULT 0, note text, tags int[]);
        INSERT INTO accounts (id, owner, balance, tags) SELECT g, 'owner ' || g, g * 10, ARRAY[g, g + 1] FROM generate_series(1, 500) g;
        """;

    private const string Dump = "SELECT id, owner, balance, note, tags FROM accounts ORDER BY id";

    private static SyncConfig Config(PgSyncWorkspace w, int batchSize = 100) =>
        w.Config("{name: accounts, cdc_method: changelog}", batchSize: batchSize, blocks: """
            cdc:
              changelog:
                type: postgres_wal
            """);

    [Fact]
    public async Task Snapshot_then_the_log_carries_inserts_updates_and_deletes_in_whole_transactions()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Accounts);
        var config = Config(w);

        var first = await w.RunCompletedAsync(config);
        Assert.Equal(500, first.Statistics.RecordsInserted);
        await w.AssertSameAsync(Dump);

        await w.Source.ExecuteAsync("""
            BEGIN;
            UPDATE accounts SET balance = balance - 5 WHERE id = 1;
            UPDATE accounts SET balance = balance + 5 WHERE id = 2;
            COMMIT;
            INSERT INTO accounts (id, owner) SELECT g, 'new ' || g FROM generate_series(1001, 1250) g;
            DELETE FROM accounts WHERE id BETWEEN 100 AND 109;
            UPDATE accounts SET id = 5000 WHERE id = 3;
            """);
        var second = await w.RunCompletedAsync(config);

        Assert.Equal(251, second.Statistics.RecordsInserted);
        Assert.Equal(2, second.Statistics.RecordsUpdated);
        Assert.Equal(11, second.Statistics.RecordsDeleted);
        await w.AssertSameAsync(Dump);
        var third = await w.RunCompletedAsync(config);
        Assert.Equal(0, PgSyncWorkspace.Writes(third));
        Assert.StartsWith("wal:", third.Tables.Single().Position, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Writes_during_the_snapshot_are_neither_lost_nor_doubled()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Accounts);
        await w.Source.ExecuteAsync("INSERT INTO accounts (id, owner) SELECT g, 'bulk ' || g FROM generate_series(10000, 40000) g");
        var config = Config(w, batchSize: 500);
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            var n = 0;
            while (!stop.IsCancellationRequested)
            {
                n++;
                await w.Source.ExecuteAsync($"""
                    INSERT INTO accounts (id, owner) VALUES ({100_000 + n}, 'during {n}');
                    UPDATE accounts SET balance = balance + 1 WHERE id = {(n * 37) % 40000 + 1};
                    DELETE FROM accounts WHERE id = {(n * 53) % 40000 + 1};
                    """);
            }

            return n;
        });

        await w.RunCompletedAsync(config);
        await Task.Delay(300);
        await stop.CancelAsync();
        var writes = await writer;
        await w.RunCompletedAsync(config);

        Assert.True(writes > 10, $"only {writes} concurrent write rounds");
        await w.AssertSameAsync(Dump);
    }

    [Fact]
    public async Task A_slot_dropped_behind_the_engines_back_is_detected_and_the_table_resnapshotted()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Accounts);
        var config = Config(w);
        await w.RunCompletedAsync(config);
        var slot = TablePlan.FromConfig(config).Single().SlotName;

        await w.Source.ExecuteAsync("SELECT pg_drop_replication_slot($1)", slot);
        await w.Source.ExecuteAsync("DELETE FROM accounts WHERE id <= 20; UPDATE accounts SET note = 'changed' WHERE id > 490; INSERT INTO accounts (id, owner) VALUES (9999, 'late')");
        var report = await w.RunCompletedAsync(config);

        Assert.Contains(report.Warnings, x => x.Contains(slot, StringComparison.Ordinal) && x.Contains("re-snapshotted", StringComparison.Ordinal));
        Assert.Equal(20, report.Statistics.RecordsDeleted);
        Assert.Equal(10, report.Statistics.RecordsUpdated);
        Assert.Equal(1, report.Statistics.RecordsInserted);
        await w.AssertSameAsync(Dump);
        Assert.Equal(1L, await w.Source.ScalarAsync<long>("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", slot));
    }

    /// <summary>
    /// The destination restored from an older backup (its rows, ledger and committed checkpoint): the run resumes from
    /// the destination's older checkpoint, but the slot has confirmed the newer one and PostgreSQL streams only from
    /// there, so the changes in between would never arrive. The slot cannot go back: the table is re-snapshotted and
    /// compared with the (restored) ledger instead, and the report says why.
    /// </summary>
    [Fact]
    public async Task A_checkpoint_behind_what_the_slot_confirmed_resnapshots_instead_of_skipping_the_log_between()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Accounts);
        var config = Config(w);
        await w.RunCompletedAsync(config);
        await w.Destination.ExecuteAsync(CopySchemas("public", "deltasync"));

        await w.Source.ExecuteAsync("UPDATE accounts SET note = 'between' WHERE id BETWEEN 300 AND 320; DELETE FROM accounts WHERE id BETWEEN 400 AND 405; INSERT INTO accounts (id, owner) VALUES (7000, 'between')");
        await w.RunCompletedAsync(config);
        await w.AssertSameAsync(Dump);
        await w.Destination.ExecuteAsync(RestoreSchemas("public", "deltasync"));

        var report = await w.RunCompletedAsync(config);

        Assert.Contains(report.Warnings, x => x.Contains("diverged", StringComparison.Ordinal));
        Assert.Contains(report.Warnings, x => x.Contains("already confirmed", StringComparison.Ordinal) && x.Contains("re-snapshotted", StringComparison.Ordinal));
        await w.AssertSameAsync(Dump);
        await w.Source.ExecuteAsync("UPDATE accounts SET note = 'after' WHERE id = 1");
        var next = await w.RunCompletedAsync(config);
        Assert.DoesNotContain(next.Warnings, x => x.Contains("re-snapshotted", StringComparison.Ordinal));
        Assert.Equal(1, next.Statistics.RecordsUpdated);
        await w.AssertSameAsync(Dump);
    }

    /// <summary>Copies every table of the schemas into schema <c>backup_&lt;name&gt;</c> (a backup of the destination).</summary>
    private static string CopySchemas(params string[] schemas) => string.Concat(schemas.Select(schema => $$"""
        CREATE SCHEMA backup_{{schema}};
        DO $$ DECLARE t text; BEGIN
          FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = '{{schema}}' LOOP
            EXECUTE format('CREATE TABLE backup_{{schema}}.%I AS TABLE {{schema}}.%I', t, t);
          END LOOP;
        END $$;
        """));

    /// <summary>Puts back what <see cref="CopySchemas"/> kept, table by table (a restore of the destination).</summary>
    private static string RestoreSchemas(params string[] schemas) => string.Concat(schemas.Select(schema => $$"""
        DO $$ DECLARE t text; BEGIN
          FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'backup_{{schema}}' LOOP
            EXECUTE format('TRUNCATE {{schema}}.%I', t);
            EXECUTE format('INSERT INTO {{schema}}.%I SELECT * FROM backup_{{schema}}.%I', t, t);
          END LOOP;
        END $$;
        """));

    /// <summary>
    /// A publication dropped behind the engine's back (or the table taken out of it) is recreated, and since the slot's
    /// log from its position on cannot be read through it (pgoutput reads publications as of each change: "publication
    /// … does not exist", every run, for good) nor holds the changes made while the table was not published, the slot is
    /// recreated and the table re-snapshotted and compared with the ledger, like a dropped slot.
    /// </summary>
    [Theory]
    [InlineData("DROP PUBLICATION {0}")]
    [InlineData("ALTER PUBLICATION {0} DROP TABLE accounts")]
    public async Task A_publication_dropped_behind_the_engines_back_is_recreated_and_the_table_resnapshotted(string drop)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Accounts);
        var config = Config(w);
        await w.RunCompletedAsync(config);
        var publication = TablePlan.FromConfig(config).Single().PublicationName;

        await w.Source.ExecuteAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, drop, $"\"{publication}\""));
        await w.Source.ExecuteAsync("DELETE FROM accounts WHERE id <= 20; UPDATE accounts SET note = 'changed' WHERE id > 490; INSERT INTO accounts (id, owner) VALUES (9999, 'late')");
        var report = await w.RunCompletedAsync(config);

        Assert.Contains(report.Warnings, x => x.Contains(publication, StringComparison.Ordinal) && x.Contains("re-snapshotted", StringComparison.Ordinal));
        Assert.Equal((1L, 10L, 20L), (report.Statistics.RecordsInserted, report.Statistics.RecordsUpdated, report.Statistics.RecordsDeleted));
        await w.AssertSameAsync(Dump);

        await w.Source.ExecuteAsync("UPDATE accounts SET note = 'after' WHERE id = 100");
        var next = await w.RunCompletedAsync(config);
        Assert.Equal(1, next.Statistics.RecordsUpdated);
        await w.AssertSameAsync(Dump);
    }

    /// <summary>
    /// A publication dropped and created again by hand: the slot cannot decode its log through it (it did not exist at the
    /// slot's position) — every run failed with "publication … does not exist", for good. The run that meets it drops the
    /// slot and says so; the next one re-snapshots the table and converges.
    /// </summary>
    [Fact]
    public async Task A_publication_created_again_by_hand_gets_the_slot_recreated_and_the_table_resnapshotted()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Accounts);
        var config = Config(w);
        await w.RunCompletedAsync(config);
        var publication = TablePlan.FromConfig(config).Single().PublicationName;

        await w.Source.ExecuteAsync($"DROP PUBLICATION \"{publication}\"; DELETE FROM accounts WHERE id <= 20; CREATE PUBLICATION \"{publication}\" FOR TABLE accounts");
        await w.Source.ExecuteAsync("UPDATE accounts SET note = 'changed' WHERE id > 490; INSERT INTO accounts (id, owner) VALUES (9999, 'late')");
        var failed = await w.RunAsync(config);

        Assert.Equal("failed", failed.Metadata.Status);
        Assert.Contains(failed.Errors, e => e.Message.Contains($"the publication '{publication}' did not exist at the slot's position", StringComparison.Ordinal) && e.Message.Contains("the next run recreates it and re-snapshots the table", StringComparison.Ordinal));

        var report = await w.RunCompletedAsync(config);

        Assert.Contains(report.Warnings, x => x.Contains("no longer exists", StringComparison.Ordinal) && x.Contains("re-snapshotted", StringComparison.Ordinal));
        Assert.Equal((1L, 10L, 20L), (report.Statistics.RecordsInserted, report.Statistics.RecordsUpdated, report.Statistics.RecordsDeleted));
        await w.AssertSameAsync(Dump);
    }

    [Fact]
    public async Task An_update_that_leaves_a_toasted_value_untouched_keeps_it()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Accounts);
        // Incompressible and large: stored out of line, so an update of another column does not log it.
        await w.Source.ExecuteAsync("UPDATE accounts SET note = (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 400)) WHERE id <= 3");
        var config = Config(w);
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync("UPDATE accounts SET balance = 42 WHERE id <= 3");
        var report = await w.RunCompletedAsync(config);

        Assert.Equal(3, report.Statistics.RecordsUpdated);
        await w.AssertSameAsync(Dump);
        Assert.Equal(3L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM accounts WHERE length(note) = 12800 AND balance = 42"));
    }

    [Fact]
    public async Task A_column_added_between_runs_is_added_at_the_destination()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Accounts);
        var config = Config(w);
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync("""
            UPDATE accounts SET note = 'before' WHERE id = 1;
            ALTER TABLE accounts ADD COLUMN tier int NOT NULL DEFAULT 3;
            UPDATE accounts SET tier = 1, note = 'after' WHERE id <= 5;
            INSERT INTO accounts (id, owner, tier) VALUES (777, 'seven', 7);
            """);
        var report = await w.RunCompletedAsync(config);

        Assert.Contains(report.Warnings, x => x.Contains("schema of 'accounts' changed", StringComparison.Ordinal));
        await w.AssertSameAsync("SELECT id, owner, balance, note, tags, tier FROM accounts ORDER BY id");
        var again = await w.RunCompletedAsync(config);
        Assert.Equal(0, PgSyncWorkspace.Writes(again));
    }

    [Fact]
    public async Task A_column_added_inside_a_streamed_transaction_reshapes_the_changes_read_before_it()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Accounts);
        var config = Config(w);
        var first = await w.RunCompletedAsync(config);
        var plan = TablePlan.FromConfig(config).Single();
        await using var source = await new PostgresConnector(SystemClock.Instance).OpenSourceAsync(config.Sync.Source, config, CancellationToken.None);
        await using var destination = await new PostgresConnector(SystemClock.Instance).OpenDestinationAsync(config.Sync.Destination, config, CancellationToken.None);
        // The pass described the table before the DDL, as a pass of `run --follow` may.
        var before = await source.DescribeTableAsync(plan.ToTableOptions(), CancellationToken.None);
        await w.Source.ExecuteAsync("""
            BEGIN;
            UPDATE accounts SET note = 'before' WHERE id = 1;
            ALTER TABLE accounts ADD COLUMN tier int NOT NULL DEFAULT 3;
            INSERT INTO accounts (id, owner, tier) VALUES (777, 'seven', 7);
            COMMIT;
            """);

        var request = new CaptureRequest(plan, before, Position.Parse(first.Tables.Single().Position), 100, destination.Ledger, new LedgerScope("accounts", plan.SourceName), null);
        await using var capture = source.CreateCapture(request);
        var events = new List<(TableSchema Schema, ChangeEvent Change)>();
        await foreach (var batch in capture.ReadAsync(CancellationToken.None))
        {
            events.AddRange(batch.Events.Select(e => (batch.Schema, e)));
        }

        Assert.Equal(2, events.Count);
        Assert.All(events, e => Assert.Equal(6, e.Schema.Columns.Count));
        Assert.All(events, e => Assert.Equal(6, e.Change.Values!.Length));
        var tier = events[0].Schema.IndexOf("tier");
        Assert.Equal([3L, 7L], events.Select(e => e.Change.Values![tier]));
        Assert.Equal("before", events[0].Change.Values![events[0].Schema.IndexOf("note")]);
    }

    [Fact]
    public async Task Truncate_empties_the_destination_table_and_later_inserts_follow()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Accounts);
        var config = Config(w);
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync("INSERT INTO accounts (id, owner) VALUES (600, 'gone soon'); TRUNCATE accounts; INSERT INTO accounts (id, owner) VALUES (1, 'again'), (2, 'again')");
        var report = await w.RunCompletedAsync(config);

        // The insert and the TRUNCATE ran in one transaction: the row never existed for anyone else.
        Assert.Equal(500, report.Statistics.RecordsDeleted);
        await w.AssertSameAsync(Dump);
        Assert.Equal(2L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM accounts"));
    }

    [Fact]
    public async Task The_slot_is_advanced_to_the_checkpoint_and_uninstall_drops_slot_and_publication()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Accounts);
        var config = Config(w);
        await w.RunCompletedAsync(config);
        await w.Source.ExecuteAsync("UPDATE accounts SET note = 'x' WHERE id = 1");
        var report = await w.RunCompletedAsync(config);
        var plan = TablePlan.FromConfig(config).Single();

        var confirmed = await w.Source.ScalarAsync<string>("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", plan.SlotName);
        Assert.Equal(report.Tables.Single().Position, "wal:" + confirmed);

        await using (var source = await new PostgresConnector(SystemClock.Instance).OpenSourceAsync(config.Sync.Source, config, CancellationToken.None))
        {
            await source.UninstallAsync(plan, CancellationToken.None);
        }

        Assert.Equal(0L, await w.Source.ScalarAsync<long>("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", plan.SlotName));
        Assert.Equal(0L, await w.Source.ScalarAsync<long>("SELECT count(*) FROM pg_publication WHERE pubname = $1", plan.PublicationName));
    }
}

/// <summary>Tables without a primary key, read from the log: inserted rows land exactly once.</summary>
public sealed class WalKeylessTableTests
{
    [Fact]
    public async Task An_insert_only_table_without_a_key_is_copied_and_appended_exactly_once()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE history (tid int, delta int, mtime timestamp, filler char(22));
            INSERT INTO history SELECT g % 10, g, timestamp '2025-01-01' + g * interval '1 second', 'x' FROM generate_series(1, 300) g;
            INSERT INTO history SELECT 1, 1, timestamp '2025-01-01', 'same' FROM generate_series(1, 3);
            """);
        var config = w.Config("{name: history, cdc_method: changelog}", batchSize: 64);

        var first = await w.RunCompletedAsync(config);
        await w.Source.ExecuteAsync("""
            INSERT INTO history VALUES (7, 7, '2025-02-02', 'dup'), (7, 7, '2025-02-02', 'dup');
            BEGIN; INSERT INTO history VALUES (8, 8, NULL, NULL); INSERT INTO history VALUES (9, 9, NULL, NULL); COMMIT;
            """);
        var second = await w.RunCompletedAsync(config);
        var third = await w.RunCompletedAsync(config);

        Assert.Equal(303, first.Statistics.RecordsInserted);
        Assert.Equal(4, second.Statistics.RecordsInserted);
        Assert.Equal(0, PgSyncWorkspace.Writes(third));
        Assert.Contains(first.Warnings, x => x.Contains("no primary key", StringComparison.Ordinal));
        await w.AssertSameAsync("SELECT tid, delta, mtime, filler, count(*) FROM history GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4");
    }
}
