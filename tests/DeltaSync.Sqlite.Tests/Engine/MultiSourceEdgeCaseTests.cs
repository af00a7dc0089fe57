using DeltaSync.Core.Reporting;
using NodaTime;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>
/// Multi-source cases found by a second reader acting as a user: sources whose tables list columns in another order
/// or track changes in other columns, and a source joining a table another source already filled.
/// </summary>
public sealed class MultiSourceEdgeCaseTests : IDisposable
{
    private static readonly Instant Start = Instant.FromUtc(2026, 3, 1, 12, 0);

    private readonly SyncWorkspace _workspace = new();
    private readonly ManualClock _clock = new(Start);

    private SqliteTestDb Db(string name) => new(Path.Combine(_workspace.Folder, name + ".db"));

    private async Task<SyncReport> RunAsync(string yaml)
    {
        _clock.Advance(Duration.FromMinutes(1));
        return await _workspace.RunCompletedAsync(_workspace.Configure(yaml), clock: _clock);
    }

    private string At(int secondsAgo) => ItemsTable.Timestamp(_clock.Now - Duration.FromSeconds(secondsAgo));

    private object? Dest(string column, long id) =>
        _workspace.Destination.Scalar($"SELECT {column} FROM customers WHERE id = $id", ("$id", id));

    /// <summary>The same versioned customer at each named source (the application stamps updated_at and bumps row_version).</summary>
    private void VersionedCustomers(params string[] names)
    {
        foreach (var name in names)
        {
            var db = Db(name);
            db.Execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, updated_at TEXT NOT NULL, row_version INTEGER NOT NULL)");
            db.Execute($"INSERT INTO customers VALUES (1, 'Ann', 'ann@x', '{At(600)}', 1)");
        }
    }

    [Fact]
    public async Task Sources_with_different_column_order_write_each_value_to_its_own_column()
    {
        var crm = Db("crm");
        var shop = Db("shop");
        crm.Execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, updated_at TEXT NOT NULL)");
        shop.Execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, updated_at TEXT NOT NULL, email TEXT, name TEXT)");
        // Many one-row batches from each source: their writes interleave at the destination.
        for (var i = 0; i < 40; i += 2)
        {
            crm.Execute($"INSERT INTO customers VALUES ({i + 1}, 'Ann', 'ann@crm', '{At(60)}')");
            shop.Execute($"INSERT INTO customers VALUES ({i + 2}, '{At(60)}', 'bob@shop', 'Bob')");
        }

        const string yaml = """
            sync:
              sources:
                - {name: crm, connection: "sqlite:crm.db", tables: [customers]}
                - {name: shop, connection: "sqlite:shop.db", tables: [customers]}
              destination: {connection: "sqlite:dest.db"}
              batch_size: 1
            conflict_resolution: {default_strategy: last_write_wins}
            """;

        await RunAsync(yaml);

        var wrong = _workspace.Destination.Scalar("SELECT count(*) FROM customers WHERE name NOT IN ('Ann', 'Bob') OR email NOT IN ('ann@crm', 'bob@shop')");
        Assert.Equal(0L, wrong);
        Assert.Equal(40L, _workspace.Destination.Count("customers"));
    }

    [Fact]
    public async Task Another_sources_version_column_is_not_a_conflicting_field()
    {
        VersionedCustomers("crm", "shop", "erp");

        const string yaml = """
            sync:
              sources:
                - {name: crm, connection: "sqlite:crm.db", tables: [customers]}
                - {name: shop, connection: "sqlite:shop.db", tables: [customers]}
                - {name: erp, connection: "sqlite:erp.db", cdc_method: version, tables: [{name: customers, version_field: row_version}]}
              destination: {connection: "sqlite:dest.db"}
            conflict_resolution: {default_strategy: manual_review}
            """;
        await RunAsync(yaml);

        // The same application at every site stamps updated_at and bumps row_version; crm and shop change different fields.
        Db("crm").Execute($"UPDATE customers SET name = 'Ann C', updated_at = '{At(30)}', row_version = 2 WHERE id = 1");
        Db("shop").Execute($"UPDATE customers SET email = 'ann@shop', updated_at = '{At(20)}', row_version = 3 WHERE id = 1");
        var report = await RunAsync(yaml);

        Assert.Empty(report.Conflicts.Select(c => $"{c.ConflictType} [{string.Join(",", c.Fields)}] {c.Resolution}"));
        Assert.Equal(("Ann C", "ann@shop"), (Dest("name", 1), Dest("email", 1)));
    }

    [Fact]
    public async Task The_destination_keeps_the_largest_value_of_another_sources_version_column()
    {
        VersionedCustomers("crm", "erp");

        const string yaml = """
            sync:
              sources:
                - {name: crm, connection: "sqlite:crm.db", tables: [customers]}
                - {name: erp, connection: "sqlite:erp.db", cdc_method: version, tables: [{name: customers, version_field: row_version}]}
              destination: {connection: "sqlite:dest.db"}
            conflict_resolution: {default_strategy: last_write_wins}
            """;
        await RunAsync(yaml);
        Db("erp").Execute($"UPDATE customers SET name = 'Ann E', updated_at = '{At(100)}', row_version = 3 WHERE id = 1");
        await RunAsync(yaml);

        // crm's application bumps row_version too, from its own copy: a lower number than erp's, on another field.
        Db("crm").Execute($"UPDATE customers SET email = 'ann@crm', updated_at = '{At(30)}', row_version = 2 WHERE id = 1");
        var report = await RunAsync(yaml);

        Assert.Empty(report.Conflicts.Select(c => $"{c.ConflictType} [{string.Join(",", c.Fields)}] {c.Resolution}"));
        Assert.Equal(("Ann E", "ann@crm", 3L), (Dest("name", 1), Dest("email", 1), Dest("row_version", 1)));
    }

    [Fact]
    public async Task A_source_joining_later_with_a_different_value_for_an_existing_key_is_an_insert_conflict()
    {
        var crm = Db("crm");
        var shop = Db("shop");
        foreach (var db in new[] { crm, shop })
        {
            db.Execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, updated_at TEXT NOT NULL)");
        }

        crm.Execute($"INSERT INTO customers VALUES (1, 'Ann', 'ann@crm', '{At(600)}')");
        shop.Execute($"INSERT INTO customers VALUES (1, 'Ann', 'ann@shop', '{At(300)}')");
        await RunAsync("""
            sync:
              sources:
                - {name: crm, connection: "sqlite:crm.db", tables: [customers]}
              destination: {connection: "sqlite:dest.db"}
            """);

        // shop joins; crm has priority.
        var report = await RunAsync("""
            sync:
              sources:
                - {name: crm, connection: "sqlite:crm.db", tables: [customers]}
                - {name: shop, connection: "sqlite:shop.db", tables: [customers]}
              destination: {connection: "sqlite:dest.db"}
            conflict_resolution: {default_strategy: source_wins, source_priority: [crm, shop]}
            """);

        // The same situation with both sources configured from the start is an insert conflict that crm wins.
        Assert.Equal("ann@crm", Dest("email", 1));
        Assert.Contains(report.Conflicts, c => c.ConflictType == "insert_conflict");
    }

    public void Dispose() => _workspace.Dispose();
}
