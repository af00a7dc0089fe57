using DeltaSync.Core.Pipeline;
using DeltaSync.Core.Reporting;
using DeltaSync.Core.State;
using NodaTime;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>
/// The spec's "Deletion Handling" edge cases against real SQLite databases: soft deletes (propagated or kept), hard
/// deletes (trigger capture, and reconciliation under timestamp CDC), cascade deletes and their propagation to child
/// tables, delayed deletes, and undeleting.
/// </summary>
public sealed class DeletionHandlingSyncTests : IDisposable
{
    private static readonly Instant Start = Instant.FromUtc(2026, 3, 1, 12, 0);

    private readonly SyncWorkspace _workspace = new();
    private readonly ManualClock _clock = new(Start);

    /// <summary>A timestamp <paramref name="offset"/> from the source's clock now (runs move it on by a minute each).</summary>
    private string At(Duration offset) => ItemsTable.Timestamp(_clock.Now + offset);

    /// <summary>A config syncing <c>accounts</c> (given as a table entry) from source.db to dest.db, plus a top-level block.</summary>
    private static string AccountsYaml(string table, string blocks = "") => $$"""
        sync:
          source: {connection: "sqlite:source.db", tables: [{{table}}]}
          destination: {connection: "sqlite:dest.db"}
        {{blocks}}
        """;

    private void CreateAccounts() => _workspace.Source.Execute("""
        CREATE TABLE accounts (
          id INTEGER PRIMARY KEY,
          name TEXT NOT NULL,
          is_deleted INTEGER NOT NULL DEFAULT 0,
          deleted_at TEXT,
          updated_at TEXT NOT NULL)
        """);

    private void Account(long id, string name, Duration at, int isDeleted = 0, string? deletedAt = null) => _workspace.Source.Execute(
        "INSERT INTO accounts (id, name, is_deleted, deleted_at, updated_at) VALUES ($id, $name, $flag, $deleted_at, $at) " +
        "ON CONFLICT (id) DO UPDATE SET name = excluded.name, is_deleted = excluded.is_deleted, deleted_at = excluded.deleted_at, updated_at = excluded.updated_at",
        ("$id", id),
        ("$name", name),
        ("$flag", isDeleted),
        ("$deleted_at", deletedAt),
        ("$at", At(at)));

    private async Task<SyncReport> RunAsync(string yaml, bool completed = true)
    {
        _clock.Advance(Duration.FromMinutes(1));
        var config = _workspace.Configure(yaml);
        return completed ? await _workspace.RunCompletedAsync(config, clock: _clock) : await _workspace.RunAsync(config, clock: _clock);
    }

    private static TableReport Table(SyncReport report, string name) => report.Tables.Single(t => t.Table == name);

    private long DestinationCount(string table, string where = "1 = 1") =>
        (long)_workspace.Destination.Scalar($"SELECT count(*) FROM {SqliteTestDb.Quote(table)} WHERE {where}")!;

    [Fact]
    public async Task SoftDeletes_with_a_deleted_at_column_are_deleted_at_the_destination()
    {
        CreateAccounts();
        var yaml = AccountsYaml("{name: accounts, soft_delete: {field: deleted_at}}");
        for (var id = 1; id <= 5; id++)
        {
            Account(id, $"account {id}", Duration.FromSeconds(-id));
        }

        await RunAsync(yaml);
        Account(2, "account 2", Duration.Zero, deletedAt: At(Duration.Zero));
        Account(4, "account 4", Duration.Zero, deletedAt: At(Duration.Zero));

        var report = await RunAsync(yaml);

        Assert.Equal(2, report.Statistics.RecordsDeleted);
        Assert.Equal(2, Table(report, "accounts").RecordsSoftDeleted);
        Assert.Contains(report.Warnings, w => w.Contains("soft-deleted (deleted_at)", StringComparison.Ordinal));
        Assert.Equal(3, DestinationCount("accounts"));
        Assert.Equal(0, DestinationCount("accounts", "id IN (2, 4)"));
        // Still soft-deleted at the source: later passes write nothing.
        Assert.Equal(0, SyncWorkspace.Writes(await RunAsync(yaml)));
    }

    [Fact]
    public async Task SoftDeletes_with_a_flag_and_deleted_values_are_deleted_at_the_destination()
    {
        CreateAccounts();
        var yaml = AccountsYaml("{name: accounts, soft_delete: {field: is_deleted, deleted_values: [1, true]}}");
        Account(1, "kept", Duration.FromSeconds(1));
        Account(2, "flagged at once", Duration.FromSeconds(2), isDeleted: 1);
        Account(3, "flagged later", Duration.FromSeconds(3));

        var initial = await RunAsync(yaml);
        Account(3, "flagged later", Duration.Zero, isDeleted: 1);
        var next = await RunAsync(yaml);

        // A row soft-deleted before it was ever synced is never written; one flagged later is deleted.
        Assert.Equal(2, initial.Statistics.RecordsInserted);
        Assert.Equal(1, Table(initial, "accounts").RecordsSoftDeleted);
        Assert.Equal(1, next.Statistics.RecordsDeleted);
        Assert.Equal(1, DestinationCount("accounts"));
        Assert.Equal(1, DestinationCount("accounts", "id = 1"));
    }

    [Fact]
    public async Task SoftDeletes_with_mode_keep_copy_the_flag()
    {
        CreateAccounts();
        var yaml = AccountsYaml("{name: accounts, soft_delete: {field: deleted_at, mode: keep}}");
        Account(1, "one", Duration.FromSeconds(1));
        Account(2, "two", Duration.FromSeconds(2));
        await RunAsync(yaml);
        Account(2, "two", Duration.Zero, deletedAt: At(Duration.Zero));

        var report = await RunAsync(yaml);

        Assert.Equal(1, report.Statistics.RecordsUpdated);
        Assert.Equal(0, report.Statistics.RecordsDeleted);
        Assert.Equal(0, Table(report, "accounts").RecordsSoftDeleted);
        _workspace.AssertSynced("accounts", "id");
    }

    [Fact]
    public async Task HardDeletes_are_captured_by_triggers()
    {
        CreateAccounts();
        var yaml = AccountsYaml("{name: accounts, cdc_method: trigger}");
        for (var id = 1; id <= 4; id++)
        {
            Account(id, $"account {id}", Duration.FromSeconds(-id));
        }

        await RunAsync(yaml);
        _workspace.Source.Execute("DELETE FROM accounts WHERE id IN (1, 3)");

        var report = await RunAsync(yaml);

        Assert.Equal(2, report.Statistics.RecordsDeleted);
        _workspace.AssertSynced("accounts", "id");
    }

    [Fact]
    public async Task HardDeletes_under_timestamp_cdc_are_found_by_reconciliation()
    {
        CreateAccounts();
        var yaml = AccountsYaml("{name: accounts, cdc_method: hybrid}", "cdc: {hybrid: {base: timestamp, reconcile_interval: 0s}}");
        for (var id = 1; id <= 4; id++)
        {
            Account(id, $"account {id}", Duration.FromSeconds(-id));
        }

        await RunAsync(yaml);
        // A hard delete leaves no updated_at to find: only the comparison with the source finds it.
        _workspace.Source.Execute("DELETE FROM accounts WHERE id = 2");

        var report = await RunAsync(yaml);

        Assert.Equal(1, report.Statistics.RecordsDeleted);
        _workspace.AssertSynced("accounts", "id");
    }

    private void CreateShop() => _workspace.Source.Execute("""
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, deleted_at TEXT, updated_at TEXT NOT NULL);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers (id) ON DELETE CASCADE, total REAL, updated_at TEXT NOT NULL);
        CREATE TABLE order_items (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE, sku TEXT, updated_at TEXT NOT NULL);
        """);

    private void FillShop()
    {
        var at = At(Duration.FromSeconds(-1));
        for (var c = 1; c <= 3; c++)
        {
            _workspace.Source.Execute("INSERT INTO customers (id, name, updated_at) VALUES ($id, $name, $at)", ("$id", c), ("$name", $"customer {c}"), ("$at", at));
            for (var o = 1; o <= 2; o++)
            {
                var order = (c * 10) + o;
                _workspace.Source.Execute("INSERT INTO orders (id, customer_id, total, updated_at) VALUES ($id, $c, $total, $at)", ("$id", order), ("$c", c), ("$total", order * 2.5), ("$at", at));
                for (var i = 1; i <= 2; i++)
                {
                    _workspace.Source.Execute("INSERT INTO order_items (id, order_id, sku, updated_at) VALUES ($id, $o, $sku, $at)", ("$id", (order * 10) + i), ("$o", order), ("$sku", $"sku-{i}"), ("$at", at));
                }
            }
        }
    }

    private static string ShopYaml(string customers, string onDelete, string blocks = "") => $$"""
        sync:
          source:
            connection: "sqlite:source.db"
            tables: [{{customers}}, orders, order_items]
          destination: {connection: "sqlite:dest.db"}
          relationships:
            - {parent: customers, child: orders, foreign_key: customer_id, on_delete: {{onDelete}}}
            - {parent: orders, child: order_items, foreign_key: order_id, on_delete: cascade}
        {{blocks}}
        """;

    [Fact]
    public async Task CascadeDeletes_reach_children_and_grandchildren_at_the_destination()
    {
        CreateShop();
        FillShop();
        // Orders and their items are read by timestamp: the source's cascade leaves them no updated_at to find. The
        // customer's hard delete is found by reconciliation.
        var yaml = ShopYaml("{name: customers, cdc_method: hybrid}", "cascade", "cdc: {hybrid: {base: timestamp, reconcile_interval: 0s}}");
        await RunAsync(yaml);
        _workspace.Source.Execute("PRAGMA foreign_keys = ON; DELETE FROM customers WHERE id = 2;");

        var report = await RunAsync(yaml);

        var customers = Table(report, "customers");
        Assert.Equal(1, customers.RecordsDeleted);
        Assert.Equal(2 + 4, customers.ChildRowsDeleted);
        Assert.Contains(report.Warnings, w => w.Contains("reached its child tables", StringComparison.Ordinal));
        foreach (var table in new[] { "customers", "orders", "order_items" })
        {
            _workspace.AssertSynced(table, "id");
        }

        // The children's ledger knows they are gone: nothing is written again, and a re-created child is inserted.
        Assert.Equal(0, SyncWorkspace.Writes(await RunAsync(yaml)));
        _workspace.Source.Execute("INSERT INTO customers (id, name, updated_at) VALUES (2, 'back', $at); INSERT INTO orders (id, customer_id, total, updated_at) VALUES (21, 2, 1.0, $at)", ("$at", At(Duration.Zero)));
        var revived = await RunAsync(yaml);
        Assert.Equal(1, Table(revived, "orders").RecordsInserted);
        _workspace.AssertSynced("orders", "id");
    }

    /// <summary>The shop synced once with soft-deleted customers and <paramref name="onDelete"/>; then customers soft-deleted and synced.</summary>
    private async Task<SyncReport> SoftDeleteCustomersAsync(string onDelete, string where, bool completed = true)
    {
        CreateShop();
        FillShop();
        var yaml = ShopYaml("{name: customers, soft_delete: {field: deleted_at}}", onDelete);
        await RunAsync(yaml);
        _workspace.Source.Execute($"UPDATE customers SET deleted_at = $at, updated_at = $at WHERE {where}", ("$at", At(Duration.Zero)));
        return await RunAsync(yaml, completed);
    }

    [Fact]
    public async Task DeletePropagation_of_a_soft_deleted_parent_cascades_to_children_the_source_keeps()
    {
        var report = await SoftDeleteCustomersAsync("cascade", "id = 1");

        Assert.Equal(6, Table(report, "customers").ChildRowsDeleted);
        Assert.Equal(0, DestinationCount("customers", "id = 1"));
        Assert.Equal(0, DestinationCount("orders", "customer_id = 1"));
        Assert.Equal(0, DestinationCount("order_items", "order_id IN (11, 12)"));
        Assert.Equal(4, DestinationCount("orders"));
        Assert.Equal(8, DestinationCount("order_items"));
    }

    [Fact]
    public async Task DeletePropagation_with_set_null_clears_the_childrens_foreign_key()
    {
        var report = await SoftDeleteCustomersAsync("set_null", "id = 3");

        Assert.Equal(2, Table(report, "customers").ChildRowsSetNull);
        Assert.Equal(0, DestinationCount("customers", "id = 3"));
        Assert.Equal(2, DestinationCount("orders", "customer_id IS NULL AND id IN (31, 32)"));
        Assert.Equal(12, DestinationCount("order_items"));
    }

    [Fact]
    public async Task DeletePropagation_with_restrict_refuses_the_parent_delete_into_the_dead_letter_queue()
    {
        // Both customers still have orders at the destination: both deletes are refused, the rest of the run goes on.
        var report = await SoftDeleteCustomersAsync("restrict", "id IN (1, 2)", completed: false);

        Assert.Equal("partial", report.Metadata.Status);
        Assert.Equal(2, report.Errors.Count(e => e.Table == "customers" && e.Message.Contains("restrict", StringComparison.Ordinal)));
        Assert.Equal(3, DestinationCount("customers"));
        Assert.Equal(6, DestinationCount("orders"));
        await using var state = await _workspace.OpenStateAsync();
        var letters = await state.ReadDeadLettersAsync(SyncWorkspace.Stream("customers"), 10, CancellationToken.None);
        Assert.Equal(["1", "2"], letters.Select(l => l.RecordId).Order());
    }

    [Fact]
    public async Task DeletePropagation_a_restricted_delete_replayed_from_the_dead_letter_queue_applies_once_the_children_are_gone()
    {
        CreateShop();
        FillShop();
        // Orders by trigger: their hard deletes reach the destination.
        var yaml = ShopYaml("{name: customers, soft_delete: {field: deleted_at}}", "restrict").Replace("tables: [{name: customers, soft_delete: {field: deleted_at}}, orders, order_items]", "tables: [{name: customers, soft_delete: {field: deleted_at}}, {name: orders, cdc_method: trigger}, order_items]", StringComparison.Ordinal);
        await RunAsync(yaml);
        _workspace.Source.Execute("UPDATE customers SET deleted_at = $at, updated_at = $at WHERE id = 1", ("$at", At(Duration.Zero)));
        Assert.Equal("partial", (await RunAsync(yaml, completed: false)).Metadata.Status);
        _workspace.Source.Execute("DELETE FROM order_items WHERE order_id IN (11, 12); DELETE FROM orders WHERE customer_id = 1");
        await RunAsync(yaml, completed: false);
        Assert.Equal(0, DestinationCount("orders", "customer_id = 1"));

        var config = _workspace.Configure(yaml);
        var connector = new SqliteConnector(_clock);
        await using var store = await _workspace.OpenStateAsync();
        await using var source = await connector.OpenSourceAsync(config.Sync.Source, config, CancellationToken.None);
        await using var destination = await connector.OpenDestinationAsync(config.Sync.Destination, config, CancellationToken.None);
        var entries = await new DeadLetterQueue(config, store).ListAsync(null, CancellationToken.None);
        var replay = Assert.Single(await new DeadLetterReplay(config, source, destination, store, _clock).ReplayAsync(entries, CancellationToken.None));

        // The row is read again, still soft-deleted: a delete, no longer restricted.
        Assert.True(replay.Error is null, replay.Error);
        Assert.Equal(1, replay.Applied);
        Assert.Empty(replay.StillFailing);
        Assert.Equal(0, DestinationCount("customers", "id = 1"));
    }

    [Fact]
    public async Task DelayedDeletes_older_than_the_last_applied_update_are_ignored()
    {
        CreateAccounts();
        var yaml = AccountsYaml("{name: accounts, soft_delete: {field: deleted_at}}", "cdc: {timestamp: {tolerance_window: 1 hour}}");
        Account(1, "one", Duration.Zero);
        Account(2, "two", Duration.Zero);
        await RunAsync(yaml);
        var renamed = _clock.Now;
        Account(1, "one, renamed", Duration.Zero);
        await RunAsync(yaml);

        // The delete is stamped before the rename that was already applied: it arrived late and loses.
        _workspace.Source.Execute("UPDATE accounts SET deleted_at = $at WHERE id = 1", ("$at", ItemsTable.Timestamp(renamed - Duration.FromSeconds(30))));
        var delayed = await RunAsync(yaml);

        Assert.Equal(0, delayed.Statistics.RecordsDeleted);
        Assert.Equal(1, Table(delayed, "accounts").DelayedDeletesIgnored);
        Assert.Contains(delayed.Warnings, w => w.Contains("older than the record's last applied update", StringComparison.Ordinal));
        Assert.Equal(1, DestinationCount("accounts", "id = 1 AND name = 'one, renamed'"));

        // A delete stamped after the last update wins.
        Account(2, "two", Duration.Zero, deletedAt: At(Duration.Zero));
        var current = await RunAsync(yaml);
        Assert.Equal(1, current.Statistics.RecordsDeleted);
        Assert.Equal(0, DestinationCount("accounts", "id = 2"));
    }

    [Fact]
    public async Task Undeleting_a_record_revives_it_only_with_a_write_newer_than_the_delete()
    {
        CreateAccounts();
        var yaml = AccountsYaml("{name: accounts, soft_delete: {field: deleted_at}}", "cdc: {timestamp: {tolerance_window: 1 hour}}");
        Account(1, "one", Duration.Zero);
        Account(2, "two", Duration.Zero);
        await RunAsync(yaml);
        var deletedAt = _clock.Now;
        Account(1, "one", Duration.Zero, deletedAt: At(Duration.Zero));
        Account(2, "two", Duration.Zero, deletedAt: At(Duration.Zero));
        Assert.Equal(2, (await RunAsync(yaml)).Statistics.RecordsDeleted);

        // Account 1 is restored by a new write; account 2 by a write stamped before its delete (a stale restore).
        Account(1, "one, restored", Duration.Zero);
        _workspace.Source.Execute("UPDATE accounts SET name = 'two, stale', deleted_at = NULL, updated_at = $at WHERE id = 2", ("$at", ItemsTable.Timestamp(deletedAt - Duration.FromSeconds(20))));
        var report = await RunAsync(yaml);

        Assert.Equal(1, report.Statistics.RecordsInserted);
        Assert.Equal(1, Table(report, "accounts").RevivalsRefused);
        Assert.Equal(1, DestinationCount("accounts", "id = 1 AND name = 'one, restored'"));
        Assert.Equal(0, DestinationCount("accounts", "id = 2"));
    }

    [Fact]
    public async Task Undeleting_after_a_hard_delete_re_inserts_the_record()
    {
        CreateAccounts();
        var yaml = AccountsYaml("{name: accounts, cdc_method: trigger}");
        Account(1, "one", Duration.FromSeconds(1));
        await RunAsync(yaml);
        _workspace.Source.Execute("DELETE FROM accounts WHERE id = 1");
        Assert.Equal(1, (await RunAsync(yaml)).Statistics.RecordsDeleted);

        Account(1, "one again", Duration.FromSeconds(1));
        var report = await RunAsync(yaml);

        Assert.Equal(1, report.Statistics.RecordsInserted);
        _workspace.AssertSynced("accounts", "id");
    }

    public void Dispose() => _workspace.Dispose();
}
