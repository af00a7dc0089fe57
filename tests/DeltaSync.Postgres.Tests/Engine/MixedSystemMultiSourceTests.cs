using System.Globalization;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>
/// A PostgreSQL source (trigger capture) and a SQLite source (timestamp capture) writing one SQLite destination:
/// values of both systems meet in one record base, an update conflict is resolved by last write, and a delete at one
/// source after an update at the other is a delete conflict the later delete wins.
/// </summary>
public sealed class MixedSystemMultiSourceTests
{
    [Fact]
    public async Task A_postgres_and_a_sqlite_source_conflict_and_resolve_by_last_write_at_one_destination()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text, updated_at timestamptz NOT NULL, deleted_at text);
            INSERT INTO customers VALUES (1, 'Ann', 'ann@old', now() - interval '10 minutes'), (2, 'Bob', 'bob@old', now() - interval '10 minutes');
            """);
        var shop = w.SqlitePath("shop.db");
        SqliteFile.Execute(shop, $"""
            CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, updated_at TEXT NOT NULL, deleted_at TEXT);
            INSERT INTO customers VALUES (1, 'Ann', 'ann@old', '{Ago(600)}', NULL), (2, 'Bob', 'bob@old', '{Ago(600)}', NULL);
            """);
        var config = w.Configure($"""
            sync:
              sources:
                - {"{"}name: crm, connection: "{w.Source.Uri}", tables: [customers], cdc_method: trigger{"}"}
                - {"{"}name: shop, connection: "sqlite:shop.db", tables: [{"{"}name: customers, soft_delete: {"{"}field: deleted_at{"}"}{"}"}]{"}"}
              destination: {"{"}connection: "sqlite:dest.db"{"}"}
            conflict_resolution: {"{"}default_strategy: last_write_wins{"}"}
            """);
        var dest = w.SqlitePath("dest.db");

        // Both systems start from the same rows: common ground, no conflict.
        var first = await w.RunCompletedAsync(config);
        Assert.Equal(0, first.Statistics.ConflictsDetected);
        Assert.Equal(["1|Ann|ann@old", "2|Bob|bob@old"], SqliteFile.Rows(dest, "SELECT id || '|' || name || '|' || email FROM customers ORDER BY id"));

        // shop's edit is a minute old; crm's (stamped by its trigger at commit) is now: crm's wins.
        SqliteFile.Execute(shop, $"UPDATE customers SET email = 'ann@shop', updated_at = '{Ago(60)}' WHERE id = 1");
        await w.Source.ExecuteAsync("UPDATE customers SET email = 'ann@crm', updated_at = now() WHERE id = 1");
        var second = await w.RunCompletedAsync(config);
        var update = Assert.Single(second.Conflicts);
        Assert.Equal(("1", "update_conflict", "last_write_wins"), (update.RecordId, update.ConflictType, update.Resolution));
        Assert.Equal(["email"], update.Fields);
        Assert.Equal("ann@crm", update.SourceValues["crm"]["email"]);
        Assert.Equal("ann@shop", update.SourceValues["shop"]["email"]);
        Assert.Equal("ann@crm", SqliteFile.Rows(dest, "SELECT email FROM customers WHERE id = 1").Single());

        // crm updates Bob, then shop deletes him (soft delete, carried as a delete): delete vs update, the later delete wins.
        await w.Source.ExecuteAsync("UPDATE customers SET email = 'bob@crm', updated_at = now() WHERE id = 2");
        // A few milliseconds ahead: the text keeps milliseconds, and crm's trigger stamped its update microseconds ago.
        var deletedAt = DateTime.UtcNow.AddMilliseconds(5).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        SqliteFile.Execute(shop, $"UPDATE customers SET updated_at = '{deletedAt}', deleted_at = '{deletedAt}' WHERE id = 2");
        var third = await w.RunCompletedAsync(config);
        // The two pipelines run in parallel: merged update-first it is one conflict; merged delete-first the delete meets
        // crm's existence and then crm's update meets the tombstone (two log entries of the same incident). Either way
        // every conflict is Bob's delete conflict, resolved by last write for the delete.
        Assert.NotEmpty(third.Conflicts);
        Assert.All(third.Conflicts, c =>
        {
            Assert.Equal(("2", "delete_conflict", "last_write_wins"), (c.RecordId, c.ConflictType, c.Resolution));
            Assert.Equal(true, c.SourceValues["shop"]["_deleted"]);
            Assert.True(c.SourceValues.ContainsKey("crm"));
        });
        Assert.Empty(SqliteFile.Rows(dest, "SELECT id FROM customers WHERE id = 2"));
        Assert.Equal(["1|ann@crm"], SqliteFile.Rows(dest, "SELECT id || '|' || email FROM customers ORDER BY id"));

        // Nothing new: a further pass detects nothing and writes nothing.
        var again = await w.RunCompletedAsync(config);
        Assert.Equal(0, again.Statistics.ConflictsDetected);
        Assert.Equal(0, again.Statistics.RecordsInserted + again.Statistics.RecordsUpdated + again.Statistics.RecordsDeleted);
    }

    private static string Ago(int seconds) =>
        DateTime.UtcNow.AddSeconds(-seconds).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

}
