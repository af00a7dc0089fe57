using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Cli.Tests.Commands;

/// <summary><c>deltasync reconcile</c> run as a process: hard deletes and destination drift a timestamp cursor cannot see.</summary>
public sealed class ReconcileCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("deltasync-reconcile-").FullName;

    [Fact]
    public async Task Reconcile_repairs_hard_deletes_and_destination_edits_and_reports_what_it_fetched()
    {
        Execute("source.db", """
            CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, updated_at TEXT);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
            INSERT INTO customers SELECT i, 'customer ' || i, '2026-01-01T10:00:00Z' FROM n;
            """);
        var config = Path.Combine(_dir, "deltasync.yaml");
        File.WriteAllText(config, """
            sync:
              source: {connection: "sqlite:source.db", tables: [customers]}
              destination: {connection: "sqlite:dest.db"}
            """);
        Assert.Equal(0, (await CliProcess.RunAsync("run", "--config", config)).ExitCode);
        Execute("source.db", "DELETE FROM customers WHERE id IN (10, 1500)");
        Execute("dest.db", "UPDATE customers SET name = 'edited at the destination' WHERE id = 700");
        Assert.Equal(0, (await CliProcess.RunAsync("run", "--config", config)).ExitCode);
        Assert.Equal(2000L, Execute("dest.db", "SELECT count(*) FROM customers"));

        var reconcile = await CliProcess.RunAsync("reconcile", "--config", config, "--json");

        Assert.True(reconcile.ExitCode == 0, reconcile.ToString());
        using (var json = JsonDocument.Parse(reconcile.StandardOutput))
        {
            Assert.Equal("reconcile", json.RootElement.GetProperty("metadata").GetProperty("mode").GetString());
            var table = Assert.Single(json.RootElement.GetProperty("tables").EnumerateArray());
            var figures = table.GetProperty("reconciliation");
            Assert.Equal(1, figures.GetProperty("rows_upserted").GetInt64());
            Assert.Equal(2, figures.GetProperty("rows_deleted").GetInt64());
            Assert.True(figures.GetProperty("rows_fetched").GetInt64() < 2000, figures.ToString());
        }

        Assert.Equal(1998L, Execute("dest.db", "SELECT count(*) FROM customers"));
        Assert.Equal("customer 700", Execute("dest.db", "SELECT name FROM customers WHERE id = 700"));

        var plain = await CliProcess.RunAsync("reconcile", "--config", config);
        Assert.True(plain.ExitCode == 0, plain.ToString());
        Assert.Equal(2, (await CliProcess.RunAsync("reconcile", "--config", config, "--table", "nope")).ExitCode);
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    private object? Execute(string database, string sql) => SqliteFile.Execute(_dir, database, sql);
}
