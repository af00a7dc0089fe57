using System.Text.Json;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.Reporting;
using NodaTime;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>
/// Cases a second reader found where the fast merge once decided otherwise than the full merge: the same steps in a
/// fast-merge world and a full-merge-only world must end with the same rows and the same reported conflicts.
/// </summary>
public sealed class FastMergeRegressionTests
{
    private sealed class World : IDisposable
    {
        public readonly ManualClock Clock = new(Instant.FromUtc(2026, 5, 1, 9, 0));
        public readonly SqliteTestDb Crm;
        public readonly SqliteTestDb Shop;

        public World(string[] crmSetup, string[] shopSetup)
        {
            Crm = new SqliteTestDb(Path.Combine(Workspace.Folder, "crm.db"));
            Shop = new SqliteTestDb(Path.Combine(Workspace.Folder, "shop.db"));
            foreach (var sql in crmSetup)
            {
                Crm.Execute(sql, ("$at", At(600)));
            }

            foreach (var sql in shopSetup)
            {
                Shop.Execute(sql, ("$at", At(600)));
            }
        }

        public SyncWorkspace Workspace { get; } = new();

        public string At(int secondsAgo) => ItemsTable.Timestamp(Clock.Now - Duration.FromSeconds(secondsAgo));

        public async Task<SyncReport> SyncAsync(bool fullMergeOnly, string yaml)
        {
            Clock.Advance(Duration.FromMinutes(1));
            var config = Workspace.Configure(yaml);
            ConflictSession.FullMergeOnly = fullMergeOnly;
            try
            {
                return await Workspace.RunCompletedAsync(config, clock: Clock);
            }
            finally
            {
                ConflictSession.FullMergeOnly = false;
            }
        }

        public void Dispose() => Workspace.Dispose();
    }

    private static List<string> Conflicts(SyncReport report) =>
        [.. report.Conflicts.Select(c => JsonSerializer.Serialize(c)).Order(StringComparer.Ordinal)];

    private const string Customers = "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, phone TEXT, updated_at TEXT NOT NULL)";

    private const string TwoSources = """
        sync:
          sources:
            - {name: crm, connection: "sqlite:crm.db", tables: [customers]}
            - {name: shop, connection: "sqlite:shop.db", tables: [customers]}
          destination: {connection: "sqlite:dest.db"}
          max_parallel_tables: 1
        conflict_resolution: {default_strategy: last_write_wins}
        """;

    /// <summary>
    /// An out-of-band edit that shop's full merge records in the base (email written by "destination") and that is then
    /// reverted: the row's digest is crm's again, but shop's full merge withdrew crm's eligibility, so crm's next change
    /// of email meets the destination's write (a conflict the destination wins) as in the full merge.
    /// </summary>
    [Fact]
    public async Task Reverted_out_of_band_edit_seen_by_the_other_source_in_between()
    {
        var results = new List<(List<string> Rows, List<string> Conflicts)>();
        foreach (var fullMergeOnly in new[] { false, true })
        {
            var seed = "INSERT INTO customers VALUES (1, 'c1', 'e', 'p', $at)";
            using var w = new World([Customers, seed], [Customers, seed]);
            await w.SyncAsync(fullMergeOnly, TwoSources);

            w.Crm.Execute("UPDATE customers SET name = 'x', updated_at = $at WHERE id = 1", ("$at", w.At(0)));
            await w.SyncAsync(fullMergeOnly, TwoSources);

            // Edited out-of-band; shop reports a change of nothing but an older updated_at (the row stays as it is).
            w.Workspace.Destination.Execute("UPDATE customers SET email = 'd' WHERE id = 1");
            w.Shop.Execute("UPDATE customers SET updated_at = $at WHERE id = 1", ("$at", w.At(300)));
            await w.SyncAsync(fullMergeOnly, TwoSources);
            w.Workspace.Destination.Execute("UPDATE customers SET email = 'e' WHERE id = 1");

            w.Crm.Execute("UPDATE customers SET email = 'y', updated_at = $at WHERE id = 1", ("$at", w.At(0)));
            var last = await w.SyncAsync(fullMergeOnly, TwoSources);
            results.Add(([.. w.Workspace.Destination.Dump("customers", ["id", "name", "email", "phone", "updated_at"], ["id"])], Conflicts(last)));
        }

        Assert.True(results[1].Rows.SequenceEqual(results[0].Rows) && results[1].Conflicts.SequenceEqual(results[0].Conflicts),
            $"fast:\n{string.Join("\n", results[0].Rows)}\n{string.Join("\n", results[0].Conflicts)}\nfull:\n{string.Join("\n", results[1].Rows)}\n{string.Join("\n", results[1].Conflicts)}");
    }

    private const string Orders = "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, amt TEXT, note TEXT, updated_at TEXT NOT NULL)";

    private static string Cascade(string strategy) => $$$"""
        sync:
          sources:
            - {name: crm, connection: "sqlite:crm.db", tables: [{name: customers, soft_delete: {field: deleted_at}}, orders]}
            - {name: shop, connection: "sqlite:shop.db", tables: [orders]}
          destination: {connection: "sqlite:dest.db"}
          max_parallel_tables: 1
          relationships:
            - {parent: customers, child: orders, foreign_key: customer_id, on_delete: cascade}
        conflict_resolution: {{{{strategy}}}}
        """;

    /// <summary>
    /// crm's fast-merged version of an order lives only in its ledger entry's tail; a cascaded delete from crm's parent
    /// writes a tombstone over that entry, which keeps the merge state, so the version still reaches the base: shop's
    /// later undelete (winning the delete conflict under source_wins) rebuilds the row with it.
    /// </summary>
    [Fact]
    public async Task Cascaded_child_delete_drops_the_fast_merge_tail()
    {
        var results = new List<(List<string> Rows, List<string> Conflicts)>();
        foreach (var fullMergeOnly in new[] { false, true })
        {
            var order = "INSERT INTO orders VALUES (10, 1, 'a', 'n', $at)";
            using var w = new World(
                ["CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, updated_at TEXT NOT NULL, deleted_at TEXT)", "INSERT INTO customers VALUES (1, 'c1', $at, NULL)", Orders, order],
                [Orders, order]);
            var lww = Cascade("default_strategy: last_write_wins");
            await w.SyncAsync(fullMergeOnly, lww);

            w.Crm.Execute("UPDATE orders SET amt = 'b', updated_at = $at WHERE id = 10", ("$at", w.At(0)));
            var fast = await w.SyncAsync(fullMergeOnly, lww);

            w.Crm.Execute("UPDATE customers SET deleted_at = $at, updated_at = $at WHERE id = 1", ("$at", w.At(0)));
            await w.SyncAsync(fullMergeOnly, lww);
            Assert.Equal(0L, w.Workspace.Destination.Scalar("SELECT count(*) FROM orders"));

            w.Shop.Execute("UPDATE orders SET note = 'm', updated_at = $at WHERE id = 10", ("$at", w.At(0)));
            var last = await w.SyncAsync(fullMergeOnly, Cascade("default_strategy: source_wins, source_priority: [shop, crm]"));
            results.Add(([.. w.Workspace.Destination.Dump("orders", ["id", "customer_id", "amt", "note"], ["id"])], Conflicts(last)));
        }

        Assert.True(results[1].Rows.SequenceEqual(results[0].Rows) && results[1].Conflicts.SequenceEqual(results[0].Conflicts),
            $"fast:\n{string.Join("\n", results[0].Rows)}\n{string.Join("\n", results[0].Conflicts)}\nfull:\n{string.Join("\n", results[1].Rows)}\n{string.Join("\n", results[1].Conflicts)}");
    }
}
