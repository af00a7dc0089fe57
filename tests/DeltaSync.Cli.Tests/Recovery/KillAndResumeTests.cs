using System.Diagnostics;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Cli.Tests.Recovery;

/// <summary>
/// A run killed with SIGKILL in the middle of a table, then run again: the destination equals the source, nothing is
/// lost or written twice, and the second report says it resumed from a checkpoint.
/// </summary>
public sealed class KillAndResumeTests : IDisposable
{
    private const int Rows = 120_000;
    private readonly string _dir = Directory.CreateTempSubdirectory("deltasync-kill-").FullName;

    [Theory]
    [InlineData("timestamp")]
    [InlineData("trigger")]
    [InlineData("polling")]
    public async Task Sigkill_mid_run_then_rerun_leaves_destination_equal_to_source(string method)
    {
        CreateSource();
        var config = WriteConfig(method);

        var killedAt = await RunAndKillAfterCommitsAsync(config, commits: 5);
        var applied = CountRows(Path.Combine(_dir, "destination.db"));
        Assert.InRange(applied, 1, Rows - 1);

        using (var source = Open("source.db"))
        {
            Execute(source, "UPDATE items SET name = name || ' (edited)', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id % 997 = 0");
            if (method != "timestamp")
            {
                // Timestamp CDC cannot see hard deletes (reconciliation finds them); the other two must.
                Execute(source, "DELETE FROM items WHERE id % 1999 = 0");
            }
        }

        var report = Path.Combine(_dir, "second.json");
        var second = await CliProcess.RunAsync("run", "--config", config, "--report", report);
        Assert.True(second.ExitCode == 0, second.ToString());

        using var json = JsonDocument.Parse(await File.ReadAllTextAsync(report));
        var warnings = json.RootElement.GetProperty("warnings").EnumerateArray().Select(w => w.GetString()).ToList();
        Assert.Contains(warnings, w => w!.Contains("did not finish; resumed from checkpoint version", StringComparison.Ordinal));
        Assert.Equal(Dump("source.db"), Dump("destination.db"));
        if (method != "timestamp")
        {
            // Rows the killed run had committed are not written again: only the rest, plus the edits, are inserted.
            var inserted = json.RootElement.GetProperty("statistics").GetProperty("records_inserted").GetInt64();
            var deletedBeforeCopy = Enumerable.Range(1, Rows).Count(id => id % 1999 == 0 && id > killedAt);
            Assert.Equal(Rows - applied - deletedBeforeCopy, inserted);
        }

        var third = await CliProcess.RunAsync("run", "--config", config, "--report", Path.Combine(_dir, "third.json"));
        Assert.True(third.ExitCode == 0, third.ToString());
        using var thirdReport = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(_dir, "third.json")));
        var statistics = thirdReport.RootElement.GetProperty("statistics");
        Assert.Equal(0, statistics.GetProperty("records_inserted").GetInt64() + statistics.GetProperty("records_updated").GetInt64() + statistics.GetProperty("records_deleted").GetInt64());
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Starts a run and kills it once the destination has committed <paramref name="commits"/> batches; returns the largest id copied.</summary>
    private async Task<long> RunAndKillAfterCommitsAsync(string config, int commits)
    {
        var cli = Path.Combine(AppContext.BaseDirectory, "deltasync.dll");
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { cli, "run", "--config", config })
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        var destination = Path.Combine(_dir, "destination.db");
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (CommittedVersion(destination) < commits)
        {
            Assert.False(process.HasExited, "the run finished before it could be killed; make the table larger");
            Assert.True(DateTime.UtcNow < deadline, "the run did not commit batches in time");
            await Task.Delay(20);
        }

        process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync();
        Assert.NotEqual(0, process.ExitCode);
        using var connection = Open("destination.db");
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT coalesce(max(id), 0) FROM items";
        return (long)command.ExecuteScalar()!;
    }

    private static long CommittedVersion(string destination)
    {
        if (!File.Exists(destination))
        {
            return 0;
        }

        try
        {
            using var connection = new SqliteConnection($"Data Source={destination};Mode=ReadOnly;Pooling=False");
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT coalesce(max(version), 0) FROM _deltasync_checkpoints";
            return (long)command.ExecuteScalar()!;
        }
        catch (SqliteException)
        {
            return 0;
        }
    }

    private void CreateSource()
    {
        using var connection = Open("source.db");
        Execute(connection, "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, updated_at TEXT)");
        using var transaction = connection.BeginTransaction();
        using var insert = connection.CreateCommand();
        insert.CommandText = "INSERT INTO items VALUES ($id, $name, $price, $at)";
        var id = insert.Parameters.Add("$id", SqliteType.Integer);
        var name = insert.Parameters.Add("$name", SqliteType.Text);
        var price = insert.Parameters.Add("$price", SqliteType.Real);
        var at = insert.Parameters.Add("$at", SqliteType.Text);
        var epoch = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        for (var i = 1; i <= Rows; i++)
        {
            id.Value = i;
            name.Value = "item " + i;
            price.Value = i * 0.25;
            at.Value = epoch.AddSeconds(i * 7).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);
            insert.ExecuteNonQuery();
        }

        transaction.Commit();
    }

    private string WriteConfig(string method)
    {
        var path = Path.Combine(_dir, "deltasync.yaml");
        File.WriteAllText(path, $"""
            sync:
              source: {"{"}connection: "sqlite:source.db", tables: [items]{"}"}
              destination: {"{"}connection: "sqlite:destination.db"{"}"}
              cdc_method: {method}
              batch_size: 250
            """);
        return path;
    }

    private SqliteConnection Open(string file)
    {
        var connection = new SqliteConnection($"Data Source={Path.Combine(_dir, file)};Pooling=False");
        connection.Open();
        return connection;
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static long CountRows(string path)
    {
        using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM items";
        return (long)command.ExecuteScalar()!;
    }

    private List<string> Dump(string file)
    {
        using var connection = Open(file);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, typeof(id), name, typeof(name), price, typeof(price), updated_at, typeof(updated_at) FROM items ORDER BY id";
        using var reader = command.ExecuteReader();
        var rows = new List<string>();
        while (reader.Read())
        {
            var values = new object[reader.FieldCount];
            reader.GetValues(values);
            rows.Add(string.Join('|', values.Select(v => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture))));
        }

        return rows;
    }
}
