using System.Text.Json;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.Reporting;
using NodaTime;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>
/// The same changes of two sources, merged in another order or split otherwise between runs, leave the same
/// destination: a delete racing an equal insert of the other source, and a source joining later against one that
/// synced a record alone (its write's time unknown).
/// </summary>
public sealed class MultiSourceOrderTests
{
    private static readonly Instant Start = Instant.FromUtc(2026, 3, 1, 12, 0);

    private sealed class World : IDisposable
    {
        public readonly ManualClock Clock = new(Start);

        public World()
        {
            foreach (var db in new[] { Crm, Shop })
            {
                db.Execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, updated_at TEXT NOT NULL, deleted_at TEXT)");
            }
        }

        public SyncWorkspace Workspace { get; } = new();

        public SqliteTestDb Crm => Db("crm");

        public SqliteTestDb Shop => Db("shop");

        private SqliteTestDb Db(string name) => new(Path.Combine(Workspace.Folder, name + ".db"));

        public async Task<SyncReport> RunAsync(string yaml, bool fullMergeOnly = false)
        {
            Clock.Advance(Duration.FromMinutes(1));
            ConflictSession.FullMergeOnly = fullMergeOnly;
            try
            {
                return await Workspace.RunCompletedAsync(Workspace.Configure(yaml), clock: Clock);
            }
            finally
            {
                ConflictSession.FullMergeOnly = false;
            }
        }

        public string At(int secondsAgo) => ItemsTable.Timestamp(Clock.Now - Duration.FromSeconds(secondsAgo));

        public List<string> Rows() => [.. Workspace.Destination.Dump("customers", ["id", "name", "email", "deleted_at"], ["id"])];

        public void Dispose() => Workspace.Dispose();
    }

    /// <summary>A fixed instant, <paramref name="minutes"/> after an hour before the test's clock starts.</summary>
    private static string T(int minutes) => ItemsTable.Timestamp(Start - Duration.FromHours(1) + Duration.FromMinutes(minutes));

    private const string CrmSource = """- {name: crm, connection: "sqlite:crm.db", tables: [{name: customers, soft_delete: {field: deleted_at}}]}""";
    private const string ShopSource = """- {name: shop, connection: "sqlite:shop.db", tables: [{name: customers, soft_delete: {field: deleted_at}}]}""";

    /// <summary>Both sources; with one table at a time, the first listed merges its batch first in a run.</summary>
    private static string Yaml(string policy, bool shopFirst = false) => $$$"""
        sync:
          sources:
            {{{(shopFirst ? ShopSource : CrmSource)}}}
            {{{(shopFirst ? CrmSource : ShopSource)}}}
          destination: {connection: "sqlite:dest.db"}
          max_parallel_tables: 1
        conflict_resolution: {{{policy}}}
        """;

    private const string Lww = "{default_strategy: last_write_wins}";
    private const string ShopFirst = "{default_strategy: source_wins, source_priority: [shop, crm]}";

    private static string Describe(SyncReport report) =>
        string.Join("; ", report.Conflicts.Select(c => $"{c.RecordId} {c.ConflictType} {c.Resolution}"));

    /// <summary>
    /// crm inserts a customer (run 1); then crm deletes it and shop inserts the same customer with the same values, both
    /// seen in run 2, merged in either order. Either way it is a delete conflict the policy decides (an existence stamp
    /// forgotten once the values converged made crm's delete plain in one order only).
    /// </summary>
    [Theory]
    [InlineData(Lww, 40)]       // shop's equal insert is newer than crm's delete
    [InlineData(Lww, 10)]       // ... older
    [InlineData(ShopFirst, 40)] // shop has priority
    [InlineData(ShopFirst, 10)]
    public async Task A_delete_and_an_equal_insert_by_the_other_source_decide_the_same_in_either_order(string policy, int shopSecond)
    {
        var results = new List<(List<string> Rows, string Conflicts)>();
        foreach (var shopFirst in new[] { true, false })
        {
            var yaml = Yaml(policy, shopFirst);
            using var w = new World();
            w.Crm.Execute($"INSERT INTO customers VALUES (1, 'Ann', 'ann@x', '{w.At(30)}', NULL)");
            await w.RunAsync(yaml);
            // Run 2 is at +60 s: both changes are after run 1's cursor.
            w.Crm.Execute($"UPDATE customers SET deleted_at = '{w.At(60 - 25)}', updated_at = '{w.At(60 - 25)}' WHERE id = 1");
            w.Shop.Execute($"INSERT INTO customers VALUES (1, 'Ann', 'ann@x', '{w.At(60 - shopSecond)}', NULL)");
            var last = await w.RunAsync(yaml);
            results.Add((w.Rows(), Describe(last)));
        }

        Assert.True(results[0].Rows.SequenceEqual(results[1].Rows),
            $"shop merged first: [{string.Join(" | ", results[0].Rows)}] conflicts: {results[0].Conflicts}\n" +
            $"crm merged first: [{string.Join(" | ", results[1].Rows)}] conflicts: {results[1].Conflicts}");
    }

    /// <summary>
    /// crm (polling: its changes carry no commit time, nor do its ledger entries) synced a customer in run 1; shop then
    /// writes the same key with another email, after run 1. Configured from the start, shop's insert meets crm's (stamped
    /// at run 1) and, newer, wins under last_write_wins. Joining in run 2 instead, crm's credited write has no known time:
    /// it must rank before shop's, not at run 2's "now".
    /// </summary>
    [Fact]
    public async Task A_joining_sources_newer_insert_wins_under_lww_as_had_both_been_configured_from_the_start()
    {
        const string Crm = """- {name: crm, connection: "sqlite:crm.db", cdc_method: polling, tables: [customers]}""";
        const string Shop = """- {name: shop, connection: "sqlite:shop.db", tables: [customers]}""";
        string Config(bool withShop) => $$$"""
            sync:
              sources:
                {{{Crm}}}
                {{{(withShop ? Shop : "")}}}
              destination: {connection: "sqlite:dest.db"}
              max_parallel_tables: 1
            conflict_resolution: {default_strategy: last_write_wins}
            """;

        var results = new List<(string Email, string Conflicts)>();
        foreach (var fromTheStart in new[] { true, false })
        {
            using var w = new World();
            w.Crm.Execute($"INSERT INTO customers VALUES (1, 'Ann', 'ann@crm', '{w.At(600)}', NULL)");
            await w.RunAsync(Config(fromTheStart));
            w.Shop.Execute($"INSERT INTO customers VALUES (1, 'Ann', 'ann@shop', '{w.At(-30)}', NULL)"); // after run 1, before run 2
            var last = await w.RunAsync(Config(true));
            results.Add(((string)w.Workspace.Destination.Scalar("SELECT email FROM customers WHERE id = 1")!, Describe(last)));
        }

        Assert.True(results[0] == results[1] && results[0].Email == "ann@shop",
            $"from the start: {results[0]}\njoining later: {results[1]}");
    }
}
