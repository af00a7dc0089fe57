using System.Globalization;
using DeltaSync.Cli.Tests;
using DeltaSync.FaultInjection.Tests.Infrastructure;
using DeltaSync.Postgres.Tests;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace DeltaSync.FaultInjection.Tests.Trials;

/// <summary>
/// The newest checkpoint of a table damaged where it is stored — the JSON file of the file store, the payload row of
/// the SQLite or PostgreSQL store — by a changed value (checksum mismatch), a torn write or garbage (seeded). With
/// <c>state.recovery.auto_repair: false</c> the next run stops (exit 1) with a message naming the table and the
/// version and writes nothing; switched to <c>auto_repair: true</c>, the run after it repairs from the previous
/// version, says so in the report and converges.
/// </summary>
public sealed class CorruptStateTrials
{
    private readonly ITestOutputHelper _output;

    public CorruptStateTrials(ITestOutputHelper output)
    {
        _output = output;
    }

    [Theory]
    [InlineData("file")]
    [InlineData("sqlite")]
    [InlineData("postgresql")]
    public async Task Corrupt_newest_checkpoint_stops_the_run_without_auto_repair_and_is_repaired_with_it(string store)
    {
        var seed = FaultSettings.SeedFor("corrupt/" + store, 1);
        var random = new Random(seed);
        var table = new FaultTable("Corrupted checkpoint in the state store", _output);
        var problems = new List<string>();
        var refusedProblems = 0;
        string faultText = $"{store} store", refusedText = "", repairedText = "";
        PgDatabase? pgState = null;
        try
        {
            await using var env = SyncEnvironment.WithSqliteSource(hardDeletes: true);
            if (store == "postgresql")
            {
                pgState = await PgDatabase.CreateAsync("fault_state");
            }

            var storage = store switch
            {
                "file" => "{type: file, path: state}",
                "sqlite" => "{type: database, connection: \"sqlite:state.db\"}",
                _ => $"{{type: database, connection: \"{pgState!.Uri}\"}}",
            };
            string Configure(bool autoRepair) => env.WriteConfig("{name: items, cdc_method: trigger}", batchSize: 250, blocks: $$"""
                state:
                  storage: {{storage}}
                  recovery: {validate_on_start: true, auto_repair: {{(autoRepair ? "true" : "false")}}, reset_on_corruption: false}
                """);
            await env.Source.CreateAsync(2_000);
            var config = Configure(autoRepair: false);
            var damage = new CheckpointDamage(env, store, pgState);
            await using (var changes = BackgroundChanges.Start(env.Source, random.Next()))
            {
                await RunCompletedAsync(config, env.PathOf("first.json"));
                await changes.StopAsync();
            }

            var version = await damage.NewestVersionAsync();
            var kind = (Corruption)random.Next(3);
            await damage.CorruptNewestAsync(kind);
            faultText = $"{store} store: newest checkpoint v{version} {Describe(kind)}";
            var destinationBefore = await env.DestinationItemsAsync();
            var committedBefore = await env.CommittedVersionAsync();
            await env.Source.BulkMutateAsync(random); // work the next run would write

            // auto_repair: false — the run stops, names the table and the version, and writes nothing.
            var refusedPath = env.PathOf("refused.json");
            CliResult refused;
            await using (var changes = BackgroundChanges.Start(env.Source, random.Next()))
            {
                refused = await CliProcess.RunAsync("run", "--config", config, "--report", refusedPath);
                await changes.StopAsync();
            }

            refusedText = $"auto_repair false: {RunVerdicts.Summary(refused, RunReport.TryRead(refusedPath))}: {RunVerdicts.FirstError(refused)}";
            if (refused.ExitCode != 1)
            {
                problems.Add($"auto_repair false: expected exit code 1 for a corrupt checkpoint: {refused}");
            }

            if (RunVerdicts.ClearFailure(refused, RunReport.TryRead(refusedPath), "items", $"version {version}") is { } unclear)
            {
                problems.Add("auto_repair false: the run did not stop with a clear message naming the table and the version: " + unclear);
            }

            if (RowComparison.ByKey(destinationBefore, await env.DestinationItemsAsync(), 1, "items (destination before vs after the refused run)") is { } written)
            {
                problems.Add("auto_repair false: the refused run wrote to the destination: " + written);
            }

            if (await env.CommittedVersionAsync() != committedBefore || await damage.NewestVersionAsync() != version)
            {
                problems.Add("auto_repair false: the refused run saved a checkpoint");
            }

            refusedProblems = problems.Count;

            // auto_repair: true — the next run falls back to the previous version, says so, and converges.
            var repairedPath = env.PathOf("repaired.json");
            var repaired = await CliProcess.RunAsync("run", "--config", Configure(autoRepair: true), "--report", repairedPath);
            var report = RunReport.TryRead(repairedPath);
            repairedText = "auto_repair true: " + RunVerdicts.Summary(repaired, report);
            if (RunVerdicts.Completed(repaired, report) is { } notCompleted)
            {
                problems.Add("auto_repair true: the run did not complete: " + notCompleted);
            }
            else if (report!.Warnings.FirstOrDefault(w => w.Contains($"version {version} was corrupt", StringComparison.Ordinal) && w.Contains("repaired from version", StringComparison.Ordinal)) is not { } warning)
            {
                problems.Add($"auto_repair true: the report does not say version {version} was repaired from an earlier version: {report}");
            }
            else
            {
                repairedText += "; warned: " + warning;
            }

            if (await env.CompareAsync() is { } difference)
            {
                problems.Add("auto_repair true: destination differs from source:\n" + difference);
            }
        }
        finally
        {
            table.Add("corrupt state", 1, seed, faultText, refusedText, refusedProblems == 0 ? "ok" : "FAIL: " + problems[0].Split('\n')[0]);
            table.Add("corrupt state", 1, seed, faultText, repairedText, problems.Count == refusedProblems ? "ok" : "FAIL: " + problems[refusedProblems].Split('\n')[0]);
            table.Publish();
            if (pgState is not null)
            {
                await pgState.DisposeAsync();
            }
        }

        Assert.True(problems.Count == 0, $"{store} store (seed {seed}):\n{string.Join("\n", problems)}");
    }

    private static async Task RunCompletedAsync(string config, string report)
    {
        var run = await CliProcess.RunAsync("run", "--config", config, "--report", report);
        Assert.True(RunVerdicts.Completed(run, RunReport.TryRead(report)) is null, "a run before the fault failed: " + run);
    }

    private static string Describe(Corruption kind) => kind switch
    {
        Corruption.ChangedValue => "had a value changed (checksum mismatch)",
        Corruption.Torn => "was cut in half (torn write)",
        _ => "was overwritten with garbage",
    };

    private enum Corruption
    {
        ChangedValue,
        Torn,
        Garbage,
    }

    /// <summary>Reads and damages the newest checkpoint of <c>items</c> where each kind of store keeps it.</summary>
    private sealed class CheckpointDamage(SyncEnvironment env, string store, PgDatabase? pgState)
    {
        private string CheckpointFolder => Path.Combine(env.PathOf("state"), "checkpoints");

        public async Task<long> NewestVersionAsync() => store switch
        {
            "file" => NewestFile().Version,
            "sqlite" => (long)(await SqliteScalarAsync("SELECT max(version) FROM checkpoints WHERE stream LIKE '%items'"))!,
            _ => await pgState!.ScalarAsync<long>("SELECT max(version) FROM deltasync.state_checkpoints WHERE stream LIKE '%items'"),
        };

        public async Task CorruptNewestAsync(Corruption kind)
        {
            switch (store)
            {
                case "file":
                    var path = NewestFile().Path;
                    await File.WriteAllTextAsync(path, Damage(await File.ReadAllTextAsync(path), kind));
                    break;
                case "sqlite":
                    var payload = (string)(await SqliteScalarAsync("SELECT payload FROM checkpoints WHERE stream LIKE '%items' ORDER BY version DESC LIMIT 1"))!;
                    await SqliteScalarAsync(
                        "UPDATE checkpoints SET payload = $payload WHERE stream LIKE '%items' AND version = (SELECT max(version) FROM checkpoints WHERE stream LIKE '%items')",
                        ("$payload", Damage(payload, kind)));
                    break;
                default:
                    var pgPayload = await pgState!.ScalarAsync<string>("SELECT payload FROM deltasync.state_checkpoints WHERE stream LIKE '%items' ORDER BY version DESC LIMIT 1");
                    await pgState.ExecuteAsync(
                        "UPDATE deltasync.state_checkpoints SET payload = $1 WHERE stream LIKE '%items' AND version = (SELECT max(version) FROM deltasync.state_checkpoints WHERE stream LIKE '%items')",
                        Damage(pgPayload, kind));
                    break;
            }
        }

        /// <summary>A changed digit keeps the JSON valid (only the checksum tells); a torn write or garbage does not parse.</summary>
        private static string Damage(string payload, Corruption kind) => kind switch
        {
            Corruption.ChangedValue => ChangeADigit(payload),
            Corruption.Torn => payload[..(payload.Length / 2)],
            _ => "\u00ff\u00fe garbage, not a checkpoint {{{",
        };

        private static string ChangeADigit(string payload)
        {
            var at = payload.IndexOf("\"position\"", StringComparison.Ordinal);
            for (var i = at < 0 ? 0 : at; i < payload.Length; i++)
            {
                if (char.IsAsciiDigit(payload[i]))
                {
                    var digit = (char)('0' + ((payload[i] - '0' + 1) % 10));
                    return string.Concat(payload.AsSpan(0, i), digit.ToString(), payload.AsSpan(i + 1));
                }
            }

            throw new InvalidOperationException("no digit to change in the checkpoint: " + payload);
        }

        private (long Version, string Path) NewestFile()
        {
            var newest = Directory.EnumerateFiles(CheckpointFolder, "*.json", SearchOption.AllDirectories)
                .Where(p => Path.GetDirectoryName(p)!.Contains("items", StringComparison.Ordinal))
                .Select(p => (Ok: long.TryParse(Path.GetFileNameWithoutExtension(p), NumberStyles.None, CultureInfo.InvariantCulture, out var v), Version: v, Path: p))
                .Where(f => f.Ok)
                .MaxBy(f => f.Version);
            Assert.True(newest.Path is not null, "the file store holds no checkpoint of items under " + CheckpointFolder);
            return (newest.Version, newest.Path);
        }

        private async Task<object?> SqliteScalarAsync(string sql, params (string Name, object Value)[] parameters)
        {
            await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = env.PathOf("state.db"), Pooling = false, DefaultTimeout = 30 }.ToString());
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = sql;
            foreach (var (name, value) in parameters)
            {
                command.Parameters.AddWithValue(name, value);
            }

            return await command.ExecuteScalarAsync();
        }
    }
}
