using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Cli.Tests.Commands;

/// <summary>A file state store with scheduled backups, restored with <c>state import</c>, as a user does it.</summary>
public sealed class StateRestoreCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("deltasync-cli-restore-").FullName;

    [Fact]
    public async Task A_backup_taken_after_a_run_merges_only_when_it_agrees_with_the_store_and_restores_with_replace()
    {
        var config = CreateShop();
        var run = await CliProcess.RunAsync("run", "--config", config);
        Assert.True(run.ExitCode == 0, run.ToString());
        var backup = Assert.Single(Directory.GetFiles(Path.Combine(_dir, "backups")));
        Assert.Matches(@"deltasync-state-\d{8}T\d{6}Z\.json$", backup);
        Assert.Equal(1, LeaseEpoch());

        // A new history under the same version numbers: the backup now disagrees with the store.
        Assert.Equal(0, (await CliProcess.RunAsync("state", "reset", "--config", config)).ExitCode);
        Assert.Equal(0, (await CliProcess.RunAsync("run", "--config", config)).ExitCode);
        Assert.Single(Directory.GetFiles(Path.Combine(_dir, "backups")));
        Assert.Equal(2, LeaseEpoch());
        var before = await StreamsAsync(config);

        var merge = await CliProcess.RunAsync("state", "import", "--config", config, "--file", backup);

        Assert.True(merge.ExitCode == 1, merge.ToString());
        Assert.Contains("nothing was imported", merge.StandardError, StringComparison.Ordinal);
        Assert.Contains("shop/customers version 1: ", merge.StandardError, StringComparison.Ordinal);
        Assert.Equal(before, await StreamsAsync(config));

        var replace = await CliProcess.RunAsync("state", "import", "--config", config, "--file", backup, "--replace", "--json");

        Assert.True(replace.ExitCode == 0, replace.ToString());
        using (var json = JsonDocument.Parse(replace.StandardOutput))
        {
            Assert.Equal("shop/customers", json.RootElement.GetProperty("replaced_streams")[0].GetString());
        }

        Assert.Equal(JsonNode.Parse(await File.ReadAllTextAsync(backup))!["streams"]!.ToJsonString(), await StreamsAsync(config));
        var again = await CliProcess.RunAsync("state", "import", "--config", config, "--file", backup);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.StartsWith("imported 0 checkpoint version(s)", again.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(0, (await CliProcess.RunAsync("state", "validate", "--config", config)).ExitCode);
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task<string> StreamsAsync(string config)
    {
        var export = await CliProcess.RunAsync("state", "export", "--config", config);
        Assert.True(export.ExitCode == 0, export.ToString());
        return JsonNode.Parse(export.StandardOutput)!["streams"]!.ToJsonString();
    }

    private long LeaseEpoch() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, "state", "leases", "shop%2Fcustomers.json")))!["epoch"]!.GetValue<long>();

    private string CreateShop()
    {
        using (var connection = new SqliteConnection($"Data Source={Path.Combine(_dir, "source.db")};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = """
                CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, updated_at TEXT);
                INSERT INTO customers VALUES (1, 'Ada', '2026-01-01T10:00:00Z'), (2, 'Bo', '2026-01-02 11:00:00');
                """;
            command.ExecuteNonQuery();
        }

        var config = Path.Combine(_dir, "deltasync.yaml");
        File.WriteAllText(config, """
            sync:
              name: shop
              source: {connection: "sqlite:source.db", tables: [customers]}
              destination: {connection: "sqlite:dest.db"}
            state:
              storage: {type: file, path: state}
              backup: {interval: 1 hour, keep: 3, path: backups}
            """);
        return config;
    }
}
