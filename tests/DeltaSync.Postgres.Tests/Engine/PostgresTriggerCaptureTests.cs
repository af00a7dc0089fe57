using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.State;
using DeltaSync.Postgres.Source;
using DeltaSync.Sqlite.State;
using Npgsql;
using NodaTime;

namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>
/// Trigger CDC from PostgreSQL (<c>cdc_method: trigger</c>), end to end against the real server: the snapshot, every
/// kind of change including hard deletes, key updates and TRUNCATE, transactions that commit after a sync (invariant 4),
/// replays (invariant 2), pruning, several consumers of one table, and removal on <c>state reset</c>.
/// </summary>
public sealed class PostgresTriggerCaptureTests
{
    private const string Table = "{name: items, cdc_method: trigger}";

    private const string Dump = "SELECT id, label, amount, tags, blob, ref, updated_at FROM items ORDER BY id";

    private static async Task CreateItemsAsync(PgDatabase db, int count)
    {
        await db.ExecuteAsync($"""
            CREATE TABLE items (
              id bigint PRIMARY KEY,
              label text NOT NULL,
              amount numeric(12,2),
              tags text[],
              blob bytea,
              ref uuid,
              updated_at timestamptz NOT NULL DEFAULT now());
            INSERT INTO items (id, label, amount, tags, blob, ref)
            SELECT g, 'item ' || g, g * 1.5, ARRAY['t' || g, NULL], decode(md5(g::text), 'hex'), md5(g::text)::uuid
            FROM generate_series(1, {count}) AS g;
            """);
    }

    private static Task InsertAsync(PgDatabase db, int from, int to) => db.ExecuteAsync($"""
        INSERT INTO items (id, label, amount, tags, blob, ref)
        SELECT g, 'new ' || g, g * 2.5, ARRAY['n' || g], decode(md5(g::text), 'hex'), md5(g::text)::uuid
        FROM generate_series({from}, {to}) AS g
        """);

    private static long Writes(Core.Reporting.SyncReport report) =>
        report.Statistics.RecordsInserted + report.Statistics.RecordsUpdated + report.Statistics.RecordsDeleted;

    private static Task<long> TriggersAsync(PgDatabase db) =>
        db.ScalarAsync<long>("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'items'::regclass AND NOT tgisinternal");

    private static Task<long> ChangeRowsAsync(PgDatabase db) =>
        db.ScalarAsync<long>("SELECT count(*) FROM deltasync._deltasync_changes WHERE table_oid = 'items'::regclass");

    [Fact]
    public async Task Snapshot_then_inserts_updates_hard_deletes_and_truncate_are_synced()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await CreateItemsAsync(w.Source, 500);
        var config = w.Config(Table, batchSize: 100);

        var first = await w.RunCompletedAsync(config);
        Assert.Equal(500, first.Statistics.RecordsInserted);
        await w.AssertSameAsync(Dump);

        await InsertAsync(w.Source, 501, 510);
        await w.Source.ExecuteAsync("UPDATE items SET label = label || ' changed', amount = amount + 1 WHERE id % 25 = 0");
        await w.Source.ExecuteAsync("DELETE FROM items WHERE id BETWEEN 10 AND 14");
        var second = await w.RunCompletedAsync(config);
        Assert.True(
            (second.Statistics.RecordsInserted, second.Statistics.RecordsUpdated, second.Statistics.RecordsDeleted) == (10, 20, 5),
            PgSyncWorkspace.Describe(second));
        await w.AssertSameAsync(Dump);

        // 505 rows at the destination; the table is emptied and three keys it held come back with new values.
        await w.Source.ExecuteAsync("TRUNCATE items");
        await w.Source.ExecuteAsync("INSERT INTO items (id, label) VALUES (1, 'again'), (2, 'again'), (3, 'again')");
        var third = await w.RunCompletedAsync(config);
        Assert.True(
            (third.Statistics.RecordsInserted, third.Statistics.RecordsUpdated, third.Statistics.RecordsDeleted) == (0, 3, 502),
            PgSyncWorkspace.Describe(third));
        await w.AssertSameAsync(Dump);

        var again = await w.RunCompletedAsync(config);
        Assert.True(Writes(again) == 0, "a run with nothing changed wrote: " + PgSyncWorkspace.Describe(again));
    }

    [Fact]
    public async Task A_primary_key_update_deletes_the_old_key_and_inserts_the_new()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE pairs (region text, code int, n int, PRIMARY KEY (region, code));
            INSERT INTO pairs SELECT r, c, c * 10 FROM unnest(ARRAY['a', 'B', 'é', 'a b']) AS r, generate_series(1, 5) AS c;
            """);
        var config = w.Config("{name: pairs, cdc_method: trigger}");
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync("UPDATE pairs SET code = code + 100 WHERE region = 'é' AND code <= 3");
        await w.Source.ExecuteAsync("UPDATE pairs SET region = 'moved' WHERE region = 'a b' AND code = 5");
        var report = await w.RunCompletedAsync(config);

        Assert.True(
            (report.Statistics.RecordsInserted, report.Statistics.RecordsUpdated, report.Statistics.RecordsDeleted) == (4, 0, 4),
            PgSyncWorkspace.Describe(report));
        await w.AssertSameAsync("SELECT region, code, n FROM pairs ORDER BY region COLLATE \"C\", code");
    }

    [Fact]
    public async Task Keys_of_any_type_under_odd_names_travel_through_the_change_table()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE odd_keys ("k" uuid, "when at" timestamptz, "net's" inet, n int, PRIMARY KEY ("k", "when at", "net's"));
            INSERT INTO odd_keys
            SELECT md5(g::text)::uuid, timestamptz '2024-01-01 00:00:00.123456+00' + g * interval '1 day', ('10.0.0.' || g)::inet, g
            FROM generate_series(1, 8) AS g;
            """);
        var config = w.Config("{name: odd_keys, cdc_method: trigger}");
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync("""
            UPDATE odd_keys SET n = n + 100 WHERE n <= 2;
            UPDATE odd_keys SET "net's" = '192.168.0.1' WHERE n = 3;
            DELETE FROM odd_keys WHERE n = 4;
            """);
        var report = await w.RunCompletedAsync(config);

        Assert.True(
            (report.Statistics.RecordsInserted, report.Statistics.RecordsUpdated, report.Statistics.RecordsDeleted) == (1, 2, 2),
            PgSyncWorkspace.Describe(report));
        await w.AssertSameAsync("SELECT \"k\", \"when at\", \"net's\"::text, n FROM odd_keys ORDER BY n");
    }

    [Fact]
    public async Task A_transaction_open_during_a_sync_is_synced_by_the_next_run_after_it_commits()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await CreateItemsAsync(w.Source, 20);
        var config = w.Config(Table, batchSize: 2);
        await w.RunCompletedAsync(config);

        // The slow writer takes its change seq now; fast writers commit higher seqs before each of the next syncs.
        await using var slow = await w.Source.OpenAsync();
        await using var transaction = await slow.BeginTransactionAsync();
        await using (var insert = new NpgsqlCommand("INSERT INTO items (id, label) VALUES (1000, 'slow writer')", slow, transaction))
        {
            await insert.ExecuteNonQueryAsync();
        }

        for (var round = 0; round < 2; round++)
        {
            await InsertAsync(w.Source, 101 + (10 * round), 103 + (10 * round));
            await w.Source.ExecuteAsync($"UPDATE items SET label = 'fast writer {round}' WHERE id = 3");
            var during = await w.RunCompletedAsync(config);
            Assert.True(
                (during.Statistics.RecordsInserted, during.Statistics.RecordsUpdated) == (3, 1),
                PgSyncWorkspace.Describe(during));
        }

        Assert.Equal(0L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM items WHERE id = 1000"));

        await transaction.CommitAsync();
        var after = await w.RunCompletedAsync(config);

        Assert.True(after.Statistics.RecordsInserted == 1, PgSyncWorkspace.Describe(after));
        await w.AssertSameAsync(Dump);
    }

    [Fact]
    public async Task A_transaction_open_during_the_snapshot_is_synced_after_it_commits()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await using var other = await PgDatabase.CreateAsync("dst2");
        await CreateItemsAsync(w.Source, 20);
        // Another sync installs the triggers first: creating them waits for writers, so the slow one must come after.
        await w.RunCompletedAsync(OtherSync(w, other));
        var config = w.Config(Table);

        await using var slow = await w.Source.OpenAsync();
        await using var transaction = await slow.BeginTransactionAsync();
        await using (var insert = new NpgsqlCommand("INSERT INTO items (id, label) VALUES (1000, 'slow writer')", slow, transaction))
        {
            await insert.ExecuteNonQueryAsync();
        }

        // A fast writer commits a higher seq: the snapshot's high mark lies above the slow writer's change.
        await InsertAsync(w.Source, 101, 101);
        var snapshot = await w.RunCompletedAsync(config);
        Assert.Equal(21, snapshot.Statistics.RecordsInserted);

        await transaction.CommitAsync();
        var after = await w.RunCompletedAsync(config);

        Assert.True(after.Statistics.RecordsInserted == 1, PgSyncWorkspace.Describe(after));
        await w.AssertSameAsync(Dump);
    }

    [Fact]
    public async Task Tables_captured_at_once_share_the_change_table()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await CreateItemsAsync(w.Source, 30);
        await w.Source.ExecuteAsync("CREATE TABLE pairs (region text, code int, n int, PRIMARY KEY (region, code)); INSERT INTO pairs SELECT 'r', g, g FROM generate_series(1, 30) AS g");
        var config = w.Config("{name: items, cdc_method: trigger}, {name: pairs, cdc_method: trigger}", blocks: "cdc: {trigger: {prune: false}}");
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync("UPDATE items SET label = 'changed' WHERE id <= 3; DELETE FROM pairs WHERE code > 25");
        var report = await w.RunCompletedAsync(config);

        Assert.True((report.Statistics.RecordsUpdated, report.Statistics.RecordsDeleted) == (3, 5), PgSyncWorkspace.Describe(report));
        await w.AssertSameAsync(Dump);
        await w.AssertSameAsync("SELECT region, code, n FROM pairs ORDER BY code");
        Assert.Equal(8L, await w.Source.ScalarAsync<long>("SELECT count(*) FROM deltasync._deltasync_changes"));
    }

    [Fact]
    public async Task Triggers_dropped_behind_the_sync_are_reinstalled_and_the_table_is_re_read()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await CreateItemsAsync(w.Source, 30);
        var config = w.Config(Table);
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync("""
            DROP TRIGGER _deltasync_changes_row ON items;
            DROP TRIGGER _deltasync_changes_truncate ON items;
            UPDATE items SET label = 'unrecorded' WHERE id = 4;
            DELETE FROM items WHERE id = 5;
            """);
        var report = await w.RunCompletedAsync(config);

        Assert.Contains(report.Warnings, x => x.Contains("re-read in full", StringComparison.Ordinal));
        Assert.True((report.Statistics.RecordsUpdated, report.Statistics.RecordsDeleted) == (1, 1), PgSyncWorkspace.Describe(report));
        Assert.Equal(2L, await TriggersAsync(w.Source));
        await w.AssertSameAsync(Dump);
    }

    [Fact]
    public async Task Replaying_changes_from_an_older_checkpoint_writes_nothing()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await CreateItemsAsync(w.Source, 6);
        // prune: false keeps the change rows, so an older checkpoint really replays them; batch 2 splits them up.
        var config = w.Config(Table, batchSize: 2, blocks: "cdc: {trigger: {prune: false}}");
        await w.RunCompletedAsync(config);
        var beforeChanges = await NewestVersionAsync(w);

        await w.Source.ExecuteAsync("""
            CREATE TEMP TABLE saved AS SELECT * FROM items WHERE id = 2;
            DELETE FROM items WHERE id = 2;
            INSERT INTO items SELECT * FROM saved;
            UPDATE items SET label = 'changed' WHERE id = 3;
            UPDATE items SET id = 40 WHERE id = 4;
            """);
        await w.RunCompletedAsync(config);
        await w.Source.ExecuteAsync("""
            CREATE TEMP TABLE kept AS SELECT * FROM items WHERE id <> 5;
            TRUNCATE items;
            INSERT INTO items SELECT * FROM kept;
            """);
        await w.RunCompletedAsync(config);
        await w.AssertSameAsync(Dump);

        var again = await w.RunCompletedAsync(config);
        Assert.True(Writes(again) == 0, "a run with nothing changed wrote: " + PgSyncWorkspace.Describe(again));

        await using (var state = await OpenStateAsync(w))
        {
            await new CheckpointHistory(state, SystemClock.Instance).RollbackAsync(Stream("items"), beforeChanges, CancellationToken.None);
        }

        var replay = await w.RunCompletedAsync(config);

        Assert.True(Writes(replay) == 0, "replaying already-applied changes wrote: " + PgSyncWorkspace.Describe(replay));
        await w.AssertSameAsync(Dump);
    }

    [Fact]
    public async Task Change_rows_are_pruned_once_checkpointed_unless_prune_is_off()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await CreateItemsAsync(w.Source, 50);
        var config = w.Config(Table);
        await w.RunCompletedAsync(config);

        await InsertAsync(w.Source, 51, 60);
        await w.Source.ExecuteAsync("UPDATE items SET label = 'changed' WHERE id <= 5");
        Assert.Equal(15L, await ChangeRowsAsync(w.Source));
        await w.RunCompletedAsync(config);
        // A transaction ending just as a pass starts may hold its progress one pass back; the next run catches up.
        await w.RunCompletedAsync(config);

        Assert.Equal(0L, await ChangeRowsAsync(w.Source));
        await w.AssertSameAsync(Dump);

        var keeping = w.Config(Table, blocks: "cdc: {trigger: {prune: false}}");
        await w.Source.ExecuteAsync("UPDATE items SET label = 'kept' WHERE id <= 3");
        await w.RunCompletedAsync(keeping);
        await w.RunCompletedAsync(keeping);

        Assert.Equal(3L, await ChangeRowsAsync(w.Source));
    }

    [Fact]
    public async Task Two_syncs_of_one_table_each_get_every_change()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await using var second = await PgDatabase.CreateAsync("dst2");
        await CreateItemsAsync(w.Source, 10);
        var first = w.Config(Table);
        var other = OtherSync(w, second);
        await w.RunCompletedAsync(first);
        await w.RunCompletedAsync(other);

        await InsertAsync(w.Source, 11, 11);
        await w.Source.ExecuteAsync("UPDATE items SET label = 'one' WHERE id = 1; DELETE FROM items WHERE id = 2");
        var firstOnly = await w.RunCompletedAsync(first);
        Assert.Equal(3, Writes(firstOnly));

        await InsertAsync(w.Source, 12, 12);
        await w.Source.ExecuteAsync("UPDATE items SET label = 'three' WHERE id = 3");
        var otherBoth = await w.RunCompletedAsync(other);
        var firstSecond = await w.RunCompletedAsync(first);

        Assert.True(
            (otherBoth.Statistics.RecordsInserted, otherBoth.Statistics.RecordsUpdated, otherBoth.Statistics.RecordsDeleted) == (2, 2, 1),
            PgSyncWorkspace.Describe(otherBoth));
        Assert.Equal(2, Writes(firstSecond));
        await w.AssertSameAsync(Dump);
        PgSyncWorkspace.AssertSameRows(await w.Source.RowsAsync(Dump), await second.RowsAsync(Dump), Dump);

        await w.RunCompletedAsync(other);
        await w.RunCompletedAsync(first);
        Assert.Equal(0L, await ChangeRowsAsync(w.Source));
    }

    [Fact]
    public async Task State_reset_removes_the_triggers_the_function_and_the_change_rows()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await CreateItemsAsync(w.Source, 10);
        var config = w.Config(Table, blocks: "cdc: {trigger: {prune: false}}");
        await w.RunCompletedAsync(config);
        await w.Source.ExecuteAsync("UPDATE items SET label = 'changed' WHERE id <= 4");
        await w.RunCompletedAsync(config);
        Assert.Equal(2L, await TriggersAsync(w.Source));
        Assert.Equal(4L, await ChangeRowsAsync(w.Source));

        await UninstallAsync(w, config);

        Assert.Equal(0L, await TriggersAsync(w.Source));
        Assert.Equal(0L, await w.Source.ScalarAsync<long>("SELECT count(*) FROM pg_proc WHERE pronamespace = 'deltasync'::regnamespace"));
        Assert.Equal(0L, await w.Source.ScalarAsync<long>("SELECT count(*) FROM deltasync._deltasync_changes_consumers"));
        await w.Source.ExecuteAsync("UPDATE items SET label = 'unrecorded' WHERE id = 5");
        Assert.Equal(0L, await ChangeRowsAsync(w.Source));
    }

    [Fact]
    public async Task State_reset_of_one_sync_keeps_the_triggers_another_sync_reads()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await using var second = await PgDatabase.CreateAsync("dst2");
        await CreateItemsAsync(w.Source, 10);
        var first = w.Config(Table);
        var other = OtherSync(w, second);
        await w.RunCompletedAsync(first);
        await w.RunCompletedAsync(other);

        await UninstallAsync(w, first);
        await w.Source.ExecuteAsync("UPDATE items SET label = 'changed' WHERE id = 7");
        var report = await w.RunCompletedAsync(other);

        Assert.Equal(2L, await TriggersAsync(w.Source));
        Assert.True(report.Statistics.RecordsUpdated == 1, PgSyncWorkspace.Describe(report));
        PgSyncWorkspace.AssertSameRows(await w.Source.RowsAsync(Dump), await second.RowsAsync(Dump), Dump);
    }

    /// <summary>A second sync of the same table to <paramref name="destination"/>, with a state store of its own.</summary>
    private static SyncConfig OtherSync(PgSyncWorkspace w, PgDatabase destination) =>
        w.Config(Table, destination: destination.Uri, blocks: $"state: {{storage: {{connection: \"sqlite:{w.SqlitePath("other.state.db")}\"}}}}");

    private static async Task UninstallAsync(PgSyncWorkspace w, SyncConfig config)
    {
        await using var source = new PostgresSource(w.Source.Uri, SystemClock.Instance);
        await source.UninstallAsync(TablePlan.FromConfig(config)[0], CancellationToken.None);
    }

    private static string Stream(string table) => TablePlan.StreamName(PgSyncWorkspace.SyncName, table);

    private static async Task<SqliteStateStore> OpenStateAsync(PgSyncWorkspace w)
    {
        var store = new SqliteStateStore(Path.Combine(w.Folder, PgSyncWorkspace.SyncName + ".state.db"));
        await store.InitializeAsync(CancellationToken.None);
        return store;
    }

    private static async Task<long> NewestVersionAsync(PgSyncWorkspace w)
    {
        await using var state = await OpenStateAsync(w);
        return (await state.ReadHistoryAsync(Stream("items"), 1, CancellationToken.None)).Single().Version;
    }
}
