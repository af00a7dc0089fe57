using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Cli.Tests.Commands;

/// <summary><c>deltasync dlq list|show|replay|purge</c> run as a process, on a run that dead-lettered one record.</summary>
public sealed class DeadLetterCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("deltasync-dlq-").FullName;

    [Fact]
    public async Task List_show_replay_and_purge_work_on_the_queue_with_their_documented_exit_codes_and_json()
    {
        var config = CreateShop();
        Assert.Equal(3, (await CliProcess.RunAsync("run", "--config", config)).ExitCode);

        var list = await CliProcess.RunAsync("dlq", "list", "--config", config, "--json");
        Assert.True(list.ExitCode == 0, list.ToString());
        string id;
        using (var json = JsonDocument.Parse(list.StandardOutput))
        {
            var entry = Assert.Single(json.RootElement.EnumerateArray());
            id = entry.GetProperty("id").GetString()!;
            Assert.StartsWith("dl_", id, StringComparison.Ordinal);
            Assert.Equal("customers", entry.GetProperty("table").GetString());
            Assert.Equal("deltasync/customers", entry.GetProperty("stream").GetString());
            Assert.Equal("4", entry.GetProperty("record_id").GetString());
            Assert.Equal("permanent", entry.GetProperty("error_class").GetString());
            Assert.Equal(1, entry.GetProperty("attempts").GetInt32());
            Assert.True(entry.GetProperty("failed_at").GetString()!.EndsWith('Z'));
            Assert.Contains("yesterday-ish", entry.GetProperty("reason").GetString(), StringComparison.Ordinal);
            Assert.Equal(JsonValueKind.String, entry.GetProperty("position").ValueKind);
            var raw = entry.GetProperty("raw_record");
            Assert.Equal(JsonValueKind.Object, raw.ValueKind);
            Assert.Equal(4, raw.GetProperty("id").GetInt64());
            Assert.Equal("Di", raw.GetProperty("name").GetString());
        }

        var plain = await CliProcess.RunAsync("dlq", "list", "--config", config);
        Assert.Equal(0, plain.ExitCode);
        Assert.Contains(id, plain.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("yesterday-ish", plain.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(2, (await CliProcess.RunAsync("dlq", "list", "--config", config, "--table", "nope")).ExitCode);

        var show = await CliProcess.RunAsync("dlq", "show", id, "--config", config);
        Assert.True(show.ExitCode == 0, show.ToString());
        Assert.Contains("record id:   4", show.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("\"name\": \"Di\"", show.StandardOutput, StringComparison.Ordinal);
        using (var json = JsonDocument.Parse((await CliProcess.RunAsync("dlq", "show", id, "--config", config, "--json")).StandardOutput))
        {
            Assert.Equal(id, json.RootElement.GetProperty("id").GetString());
            Assert.Equal("yesterday-ish", json.RootElement.GetProperty("raw_record").GetProperty("updated_at").GetString());
        }

        var unknown = await CliProcess.RunAsync("dlq", "show", "dl_0000000000000000", "--config", config);
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("no dead-letter entry 'dl_0000000000000000'", unknown.StandardError, StringComparison.Ordinal);

        // Replay before the fix: still failing, one more attempt, exit 3.
        var replay = await CliProcess.RunAsync("dlq", "replay", "--config", config);
        Assert.True(replay.ExitCode == 3, replay.ToString());
        Assert.Contains("customers: replayed 1, applied 0, still failing 1", replay.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("(attempts 2)", replay.StandardOutput, StringComparison.Ordinal);

        var bare = await CliProcess.RunAsync("dlq", "purge", "--config", config);
        Assert.Equal(2, bare.ExitCode);
        Assert.Contains("--id ID…, --table T… or --all", bare.StandardError, StringComparison.Ordinal);
        Assert.Equal(2, (await CliProcess.RunAsync("dlq", "purge", "--config", config, "--all", "--id", id)).ExitCode);
        Assert.Equal(1, (await CliProcess.RunAsync("dlq", "purge", "--config", config, "--id", "dl_0000000000000000")).ExitCode);

        var purge = await CliProcess.RunAsync("dlq", "purge", "--config", config, "--id", id);
        Assert.True(purge.ExitCode == 0, purge.ToString());
        Assert.Contains("removed 1 dead-letter entry", purge.StandardOutput, StringComparison.Ordinal);
        var empty = await CliProcess.RunAsync("dlq", "list", "--config", config, "--json");
        using (var json = JsonDocument.Parse(empty.StandardOutput))
        {
            Assert.Equal(0, json.RootElement.GetArrayLength());
        }

        var nothing = await CliProcess.RunAsync("dlq", "replay", "--config", config);
        Assert.Equal(0, nothing.ExitCode);
    }

    [Fact]
    public async Task Replay_after_the_source_is_fixed_applies_the_record_and_exits_0()
    {
        var config = CreateShop();
        Assert.Equal(3, (await CliProcess.RunAsync("run", "--config", config)).ExitCode);
        Execute("source.db", "UPDATE customers SET updated_at = '2019-05-05T05:05:05Z' WHERE id = 4");

        var replay = await CliProcess.RunAsync("dlq", "replay", "--config", config, "--table", "customers", "--json");

        Assert.True(replay.ExitCode == 0, replay.ToString());
        using (var json = JsonDocument.Parse(replay.StandardOutput))
        {
            var table = Assert.Single(json.RootElement.GetProperty("tables").EnumerateArray());
            Assert.Equal(1, table.GetProperty("applied").GetInt32());
            Assert.Equal(0, table.GetProperty("still_failing").GetInt32());
            Assert.Equal(0, table.GetProperty("conflicts_detected").GetInt32());
            Assert.Equal(1, table.GetProperty("inserted").GetInt64());
        }

        Assert.Equal(4L, Execute("dest.db", "SELECT count(*) FROM customers"));
        Assert.Equal(0, (await CliProcess.RunAsync("run", "--config", config)).ExitCode);
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    private object? Execute(string database, string sql) => SqliteFile.Execute(_dir, database, sql);

    private string CreateShop()
    {
        Execute("source.db", """
            CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, updated_at TEXT);
            INSERT INTO customers VALUES (1, 'Ada', '2026-01-01T10:00:00Z'), (2, 'Bo', '2026-01-02 11:00:00'), (3, 'Cy', 1767350000), (4, 'Di', 'yesterday-ish');
            """);
        var config = Path.Combine(_dir, "deltasync.yaml");
        File.WriteAllText(config, """
            sync:
              source: {connection: "sqlite:source.db", tables: [customers]}
              destination: {connection: "sqlite:dest.db"}
            """);
        return config;
    }
}
