using System.Diagnostics;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Cli.Tests.Commands;

/// <summary><c>run --follow</c> keeps syncing changes as they happen and stops cleanly on SIGTERM.</summary>
public sealed class FollowModeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("deltasync-follow-").FullName;

    [Fact]
    public async Task Follow_syncs_new_changes_continuously_and_stops_cleanly_on_sigterm()
    {
        Execute("source.db", "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, updated_at TEXT); INSERT INTO notes VALUES (1, 'first', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))");
        var config = Path.Combine(_dir, "deltasync.yaml");
        await File.WriteAllTextAsync(config, """
            sync:
              source: {connection: "sqlite:source.db", tables: [notes]}
              destination: {connection: "sqlite:dest.db"}
              frequency: realtime
            cdc:
              polling: {interval: "200ms"}
              timestamp: {safety_margin: "0s"}
            """);

        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { Path.Combine(AppContext.BaseDirectory, "deltasync.dll"), "run", "--config", config, "--follow" })
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await WaitUntilAsync(() => Body(1) == "first", process);

        Execute("source.db", "INSERT INTO notes VALUES (2, 'second', strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); UPDATE notes SET body = 'first, edited', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = 1");
        await WaitUntilAsync(() => Body(2) == "second" && Body(1) == "first, edited", process);

        using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}\n{await output}\n{await error}");
        Assert.Contains("stopping after the batch in flight", await error, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    private static async Task WaitUntilAsync(Func<bool> condition, Process process)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!condition())
        {
            Assert.False(process.HasExited, "the follow process exited early");
            Assert.True(DateTime.UtcNow < deadline, "the change did not arrive within 60 s");
            await Task.Delay(50);
        }
    }

    private string? Body(long id)
    {
        var path = Path.Combine(_dir, "dest.db");
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            using var connection = new SqliteConnection($"Data Source={path};Mode=ReadOnly;Pooling=False");
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT body FROM notes WHERE id = $id";
            command.Parameters.AddWithValue("$id", id);
            return command.ExecuteScalar() as string;
        }
        catch (SqliteException)
        {
            return null;
        }
    }

    private void Execute(string file, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={Path.Combine(_dir, file)};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
