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

    [Fact]
    public async Task State_history_and_rollback_of_a_shared_table_name_the_source_and_touch_only_its_stream()
    {
        var config = SharedCustomers("rollback", "(2, 'Bob')");
        for (var i = 0; i < 2; i++)
        {
            var run = await CliProcess.RunAsync("run", "--config", config);
            Assert.True(run.ExitCode == 0, run.ToString());
        }

        var shopBefore = await VersionsAsync(config, "shop");
        var crmBefore = await VersionsAsync(config, "crm");

        // Two streams carry the name: without --source the command cannot know which one is meant.
        var ambiguous = await CliProcess.RunAsync("state", "rollback", "--config", config, "--table", "customers", "--to", "1");
        Assert.True(ambiguous.ExitCode == 2, ambiguous.ToString());
        Assert.Contains("--source", ambiguous.StandardError, StringComparison.Ordinal);
        Assert.Contains("crm, shop", ambiguous.StandardError, StringComparison.Ordinal);

        var rollback = await CliProcess.RunAsync("state", "rollback", "--config", config, "--table", "customers", "--source", "shop", "--to", "1");
        Assert.True(rollback.ExitCode == 0, rollback.ToString());

        var shop = await VersionsAsync(config, "shop");
        var crm = await VersionsAsync(config, "crm");
        Assert.Equal([shopBefore[0] + 1, .. shopBefore], shop);
        Assert.Equal(crmBefore, crm);

        var unknown = await CliProcess.RunAsync("state", "history", "--config", config, "--table", "customers", "--source", "erp");
        Assert.True(unknown.ExitCode == 2, unknown.ToString());

        // The text views name each stream's source too.
        var show = await CliProcess.RunAsync("state", "show", "--config", config);
        Assert.True(show.ExitCode == 0, show.ToString());
        Assert.Contains("customers (crm)", show.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("customers (shop)", show.StandardOutput, StringComparison.Ordinal);
        var reset = await CliProcess.RunAsync("state", "reset", "--config", config);
        Assert.True(reset.ExitCode == 0, reset.ToString());
        Assert.Contains("reset customers (crm), customers (shop):", reset.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_progress_names_the_source_of_each_stream_of_a_shared_table()
    {
        var config = SharedCustomers("progress", "(2, 'Bob'), (3, 'Cy')");

        var run = await CliProcess.RunAsync("run", "--config", config);

        // One progress line per stream: keyed by the table name alone, the second source's lines were dropped as
        // repeats of the first's (and the live display on a terminal failed on the duplicate name).
        Assert.True(run.ExitCode == 0, run.ToString());
        var lines = run.StandardOutput.Split('\n');
        Assert.Contains(lines, l => l.StartsWith("customers (crm): done", StringComparison.Ordinal) && l.Contains("1 processed", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("customers (shop): done", StringComparison.Ordinal) && l.Contains("2 processed", StringComparison.Ordinal));
    }

    private static async Task<long[]> VersionsAsync(string config, string source)
    {
        var history = await CliProcess.RunAsync("state", "history", "--config", config, "--table", "customers", "--source", source, "--json");
        Assert.True(history.ExitCode == 0, history.ToString());
        using var json = JsonDocument.Parse(history.StandardOutput);
        return json.RootElement.EnumerateArray().Select(e => e.GetProperty("version").GetInt64()).ToArray();
    }

    /// <summary>crm and shop both syncing their <c>customers</c> (trigger CDC) into one destination; the config's path.</summary>
    private string SharedCustomers(string name, string shopRows)
    {
        Execute("crm.db", "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL); INSERT INTO customers VALUES (1, 'Ann');");
        Execute("shop.db", $"CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL); INSERT INTO customers VALUES {shopRows};");
        var config = Path.Combine(_dir, name + ".yaml");
        File.WriteAllText(config, """
            sync:
              sources:
                - {name: crm, connection: "sqlite:crm.db", tables: [customers]}
                - {name: shop, connection: "sqlite:shop.db", tables: [customers]}
              destination: {connection: "sqlite:dest.db"}
              cdc_method: trigger
            """);
        return config;
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
