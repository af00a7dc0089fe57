using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Cli.Tests.Commands;

/// <summary>The documented commands, flags and exit codes, run as a user runs them.</summary>
public sealed class CliCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("deltasync-cli-").FullName;

    [Fact]
    public async Task Malformed_config_prints_every_problem_with_its_key_path_and_exits_2()
    {
        var config = Path.Combine(_dir, "bad.yaml");
        await File.WriteAllTextAsync(config, """
            sync:
              source: {connection: "sqlite:x.db", tables: [a, {name: b, priority: urgent}]}
              destination: {}
              batchsize: 10
            cdc:
              timestamp: {tolerance_window: "five minutes"}
            """);

        foreach (var command in new[] { new[] { "run", "--config", config }, new[] { "validate-config", config } })
        {
            var result = await CliProcess.RunAsync(command);
            Assert.Equal(2, result.ExitCode);
            Assert.Contains("sync.source.tables[1].priority", result.StandardError, StringComparison.Ordinal);
            Assert.Contains("sync.destination.connection", result.StandardError, StringComparison.Ordinal);
            Assert.Contains("sync.batchsize", result.StandardError, StringComparison.Ordinal);
            Assert.Contains("cdc.timestamp.tolerance_window", result.StandardError, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", result.StandardError, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task What_the_named_systems_cannot_do_is_a_config_error_with_its_key_and_exits_2()
    {
        var config = Path.Combine(_dir, "systems.yaml");
        await File.WriteAllTextAsync(config, """
            sync:
              sources:
                - {name: crm, connection: "sqlite:crm.db", tables: [items, {name: orders, cdc_method: changelog}]}
                - {name: shop, connection: "postgresql://sync:Top$ecret@127.0.0.1:1/shop", tables: [items]}
                - {name: erp, connection: "mysql://root:Top$ecret@127.0.0.1/erp", tables: [items]}
                - {name: web, connection: "postgresql://sync:Top$ecret@127.0.0.1:1/web?sslmode=bogus", tables: [items], cdc_method: timestamp}
              destination: {connection: "redis://:Top$ecret@127.0.0.1:6379"}
              cdc_method: changelog
            cdc:
              changelog: {type: mysql_binlog}
            state:
              storage: {type: database, connection: "mysql://root:Top$ecret@127.0.0.1/state"}
            """);

        foreach (var command in new[] { new[] { "run", "--config", config }, new[] { "validate-config", config } })
        {
            var result = await CliProcess.RunAsync(command);
            Assert.Equal(2, result.ExitCode);
            // SQLite has no change log (the whole source's method, and one table's own), PostgreSQL's is not a binlog,
            // nothing reads mysql:, Redis holds no rows: each named by its key, nothing opened, no secret printed.
            Assert.Contains("sync.cdc_method: changelog is not offered by a sqlite source", result.StandardError, StringComparison.Ordinal);
            Assert.Contains("sync.sources[0].tables[1].cdc_method: changelog is not offered by a sqlite source (table 'orders')", result.StandardError, StringComparison.Ordinal);
            Assert.Contains("cdc.changelog.type: 'mysql_binlog' is not a change log a postgresql source has", result.StandardError, StringComparison.Ordinal);
            Assert.Contains("sync.sources[2].connection: no connector handles", result.StandardError, StringComparison.Ordinal);
            Assert.Contains("sync.destination.connection: a redis connection cannot be a destination", result.StandardError, StringComparison.Ordinal);
            Assert.Contains("sync.sources[3].connection: invalid PostgreSQL URI", result.StandardError, StringComparison.Ordinal);
            Assert.Contains("state.storage.connection: no connector can hold state", result.StandardError, StringComparison.Ordinal);
            Assert.DoesNotContain("Top$ecret", result.StandardError + result.StandardOutput, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", result.StandardError, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Unknown_option_and_missing_config_are_usage_errors()
    {
        Assert.Equal(2, (await CliProcess.RunAsync("run", "--bogus")).ExitCode);
        Assert.Equal(2, (await CliProcess.RunAsync("run")).ExitCode);
        Assert.Equal(2, (await CliProcess.RunAsync("run", "--config", Path.Combine(_dir, "missing.yaml"))).ExitCode);
    }

    [Fact]
    public async Task A_record_with_an_unparseable_timestamp_is_dead_lettered_the_rest_syncs_and_the_exit_code_is_3()
    {
        var config = CreateShop();
        var report = Path.Combine(_dir, "report.json");

        var run = await CliProcess.RunAsync("run", "--config", config, "--report", report);

        Assert.True(run.ExitCode == 3, run.ToString());
        using var json = JsonDocument.Parse(await File.ReadAllTextAsync(report));
        Assert.Equal("partial", json.RootElement.GetProperty("metadata").GetProperty("status").GetString());
        Assert.Equal(3, json.RootElement.GetProperty("statistics").GetProperty("records_inserted").GetInt64());
        var error = Assert.Single(json.RootElement.GetProperty("errors").EnumerateArray());
        Assert.Equal("4", error.GetProperty("record_id").GetString());
        Assert.Contains("updated_at", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        foreach (var key in new[] { "metadata", "statistics", "tables", "conflicts", "late_arriving_data", "checkpoint", "errors", "warnings" })
        {
            Assert.True(json.RootElement.TryGetProperty(key, out _), key);
        }

        using var destination = new SqliteConnection($"Data Source={Path.Combine(_dir, "dest.db")};Pooling=False");
        destination.Open();
        using var count = destination.CreateCommand();
        count.CommandText = "SELECT count(*) FROM customers";
        Assert.Equal(3L, count.ExecuteScalar());
    }

    [Fact]
    public async Task Status_and_state_commands_show_versions_and_rollback_appends_a_copy()
    {
        var config = CreateShop(withBadRow: false);
        Assert.Equal(0, (await CliProcess.RunAsync("run", "--config", config)).ExitCode);
        Assert.Equal(0, (await CliProcess.RunAsync("run", "--config", config)).ExitCode);

        var status = await CliProcess.RunAsync("status", "--config", config, "--json");
        Assert.Equal(0, status.ExitCode);
        using (var json = JsonDocument.Parse(status.StandardOutput))
        {
            var table = Assert.Single(json.RootElement.GetProperty("tables").EnumerateArray());
            Assert.Equal("customers", table.GetProperty("table").GetString());
            Assert.Equal("completed", table.GetProperty("last_run_status").GetString());
            Assert.True(table.GetProperty("checkpoint").GetProperty("version").GetInt64() >= 2);
        }

        var history = await CliProcess.RunAsync("state", "history", "--config", config, "--table", "customers", "--json");
        using var versions = JsonDocument.Parse(history.StandardOutput);
        var newest = versions.RootElement[0].GetProperty("version").GetInt64();

        var rollback = await CliProcess.RunAsync("state", "rollback", "--config", config, "--table", "customers", "--to", "1");
        Assert.True(rollback.ExitCode == 0, rollback.ToString());
        var show = await CliProcess.RunAsync("state", "show", "--config", config, "--json");
        using (var json = JsonDocument.Parse(show.StandardOutput))
        {
            var checkpoint = json.RootElement.GetProperty("tables")[0].GetProperty("checkpoint");
            Assert.Equal(newest + 1, checkpoint.GetProperty("version").GetInt64());
            Assert.Contains("rollback to version 1", checkpoint.GetProperty("note").GetString(), StringComparison.Ordinal);
        }

        Assert.Equal(0, (await CliProcess.RunAsync("state", "validate", "--config", config)).ExitCode);
        var export = Path.Combine(_dir, "backup.json");
        Assert.Equal(0, (await CliProcess.RunAsync("state", "export", "--config", config, "--file", export)).ExitCode);
        Assert.Equal(0, (await CliProcess.RunAsync("state", "reset", "--config", config)).ExitCode);
        var afterReset = await CliProcess.RunAsync("state", "show", "--config", config, "--json");
        using (var json = JsonDocument.Parse(afterReset.StandardOutput))
        {
            Assert.Equal(JsonValueKind.Null, json.RootElement.GetProperty("tables")[0].GetProperty("checkpoint").ValueKind);
        }

        var import = await CliProcess.RunAsync("state", "import", "--config", config, "--file", export);
        Assert.True(import.ExitCode == 0, import.ToString());
        Assert.Equal(0, (await CliProcess.RunAsync("state", "validate", "--config", config)).ExitCode);
        Assert.Equal(2, (await CliProcess.RunAsync("state", "rollback", "--config", config, "--table", "customers")).ExitCode);
    }

    [Fact]
    public async Task The_default_reports_folder_keeps_the_newest_thousand_runs()
    {
        // run --follow writes a report per pass: without a limit the folder grows by many thousands of files a day.
        var config = CreateShop(withBadRow: false);
        var reports = Directory.CreateDirectory(Path.Combine(_dir, "reports")).FullName;
        for (var i = 0; i < 1003; i++)
        {
            File.WriteAllText(Path.Combine(reports, $"sync_20200101T{i / 60 / 60:D2}{i / 60 % 60:D2}{i % 60:D2}_000000.json"), "{}");
        }

        File.WriteAllText(Path.Combine(reports, "notes.json"), "{}");

        var run = await CliProcess.RunAsync("run", "--config", config, "--json");

        Assert.True(run.ExitCode == 0, run.ToString());
        using var json = JsonDocument.Parse(run.StandardOutput);
        var runId = json.RootElement.GetProperty("metadata").GetProperty("sync_id").GetString();
        var kept = Directory.GetFiles(reports, "sync_*.json").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(1000, kept.Count);
        Assert.Equal($"{runId}.json", kept[^1]);
        Assert.Equal("sync_20200101T000004_000000.json", kept[0]);
        Assert.True(File.Exists(Path.Combine(reports, "notes.json")));
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    private string CreateShop(bool withBadRow = true)
    {
        using (var connection = new SqliteConnection($"Data Source={Path.Combine(_dir, "source.db")};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = """
                CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, updated_at TEXT);
                INSERT INTO customers VALUES (1, 'Ada', '2026-01-01T10:00:00Z'), (2, 'Bo', '2026-01-02 11:00:00'), (3, 'Cy', 1767350000);
                """ + (withBadRow ? "INSERT INTO customers VALUES (4, 'Di', 'yesterday-ish');" : "");
            command.ExecuteNonQuery();
        }

        var config = Path.Combine(_dir, "deltasync.yaml");
        File.WriteAllText(config, """
            sync:
              source: {connection: "sqlite:source.db", tables: [customers]}
              destination: {connection: "sqlite:dest.db"}
            """);
        return config;
    }
}
