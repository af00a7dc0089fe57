using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Cli.Tests.Commands;

/// <summary><c>deltasync status</c> with two sources feeding one table name: one entry per stream (source + table).</summary>
public sealed class MultiSourceStatusCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("deltasync-msstatus-").FullName;

    [Fact]
    public async Task Status_shows_one_entry_per_source_of_a_shared_table_with_its_own_run_status()
    {
        var recent = DateTime.UtcNow.AddMinutes(-2).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        Execute("crm.db", $"""
            CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, updated_at TEXT NOT NULL);
            INSERT INTO customers VALUES (1, 'Ann', '{recent}'), (2, 'Bob', '{recent}');
            """);
        // shop has a row whose timestamp is garbage: its stream ends partial, crm's completed.
        Execute("shop.db", $"""
            CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, updated_at TEXT NOT NULL);
            INSERT INTO customers VALUES (3, 'Cy', '{recent}'), (4, 'Di', 'not a time');
            """);
        var config = Path.Combine(_dir, "status.yaml");
        File.WriteAllText(config, """
            sync:
              sources:
                - {name: crm, connection: "sqlite:crm.db", tables: [customers]}
                - {name: shop, connection: "sqlite:shop.db", tables: [customers]}
              destination: {connection: "sqlite:dest.db"}
            """);
        var run = await CliProcess.RunAsync("run", "--config", config);
        Assert.True(run.ExitCode == 3, run.ToString());
        // The run's summary says which source each row is.
        var summary = run.StandardOutput.Split('\n');
        Assert.Contains(summary, l => l.TrimStart().StartsWith("source", StringComparison.Ordinal) && l.Contains("conflicts", StringComparison.Ordinal));
        Assert.Contains(summary, l => l.TrimStart().StartsWith("crm", StringComparison.Ordinal) && l.Contains("completed", StringComparison.Ordinal));
        Assert.Contains(summary, l => l.TrimStart().StartsWith("shop", StringComparison.Ordinal) && l.Contains("partial", StringComparison.Ordinal));

        var status = await CliProcess.RunAsync("status", "--config", config, "--json");
        Assert.True(status.ExitCode == 0, status.ToString());
        using (var json = JsonDocument.Parse(status.StandardOutput))
        {
            var entries = json.RootElement.GetProperty("tables").EnumerateArray()
                .ToDictionary(e => e.GetProperty("source").GetString()!, e => e);
            Assert.Equal(["crm", "shop"], entries.Keys.Order());
            Assert.All(entries.Values, e => Assert.Equal("customers", e.GetProperty("table").GetString()));
            Assert.Equal("completed", entries["crm"].GetProperty("last_run_status").GetString());
            Assert.Equal("partial", entries["shop"].GetProperty("last_run_status").GetString());
            Assert.Equal(2, entries["crm"].GetProperty("checkpoint").GetProperty("records_processed").GetInt64());
            Assert.NotEqual(entries["crm"].GetProperty("stream").GetString(), entries["shop"].GetProperty("stream").GetString());
        }

        var plain = await CliProcess.RunAsync("status", "--config", config);
        Assert.True(plain.ExitCode == 0, plain.ToString());
        var lines = plain.StandardOutput.Split('\n');
        Assert.Contains(lines, l => l.TrimStart().StartsWith("source", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.TrimStart().StartsWith("crm", StringComparison.Ordinal) && l.Contains("completed", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.TrimStart().StartsWith("shop", StringComparison.Ordinal) && l.Contains("partial", StringComparison.Ordinal));
    }

    private object? Execute(string database, string sql) => SqliteFile.Execute(_dir, database, sql);

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // Left for the system's temp cleanup.
        }
    }
}
