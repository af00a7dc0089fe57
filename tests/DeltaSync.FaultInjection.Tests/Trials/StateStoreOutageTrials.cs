using System.Diagnostics;
using System.Globalization;
using DeltaSync.Cli.Tests;
using DeltaSync.FaultInjection.Tests.Infrastructure;
using DeltaSync.Postgres.Tests;
using Xunit.Abstractions;

namespace DeltaSync.FaultInjection.Tests.Trials;

/// <summary>
/// A PostgreSQL state store reached through <see cref="FaultProxy"/> becomes unavailable while a run is saving a
/// checkpoint (the n-th checkpoint insert of the run, n seeded): the connection is cut before the insert reaches the
/// server, or after the server committed it but before the engine heard so, or every connection is dropped and new
/// ones refused for a few seconds (shorter than the engine's connection retries) or for long. The run must complete
/// after retries, or fail with a clear message; the next run (store reachable again) must converge with nothing lost or
/// doubled.
/// </summary>
public sealed class StateStoreOutageTrials
{
    private const string CheckpointInsert = "INSERT INTO \"deltasync\".\"state_checkpoints\"";
    private readonly ITestOutputHelper _output;

    public StateStoreOutageTrials(ITestOutputHelper output)
    {
        _output = output;
    }

    [Theory]
    [InlineData("cut before the checkpoint insert reaches the server")]
    [InlineData("cut after the server committed the checkpoint, before the reply")]
    [InlineData("all connections dropped, refused for 3 s")]
    [InlineData("all connections dropped, refused for 30 s")]
    public async Task State_store_outage_while_checkpointing_then_the_next_run_converges(string fault)
    {
        var seed = FaultSettings.SeedFor("state-store/" + fault, 1);
        var random = new Random(seed);
        var table = new FaultTable("PostgreSQL state store unavailable during a checkpoint", _output);
        var problems = new List<string>();
        string faultText = fault, recoveryText = "";
        try
        {
            await using var env = SyncEnvironment.WithSqliteSource(hardDeletes: true);
            await using var state = await PgDatabase.CreateAsync("fault_state");
            await using var proxy = ProxiedPostgres.Start();
            await env.Source.CreateAsync(1_500);
            var config = env.WriteConfig("{name: items, cdc_method: trigger}", batchSize: 200, blocks: $$"""
                state:
                  storage: {type: database, connection: "{{proxy.UriThrough(state)}}"}
                """);

            var occurrence = 1 + random.Next(4);
            var refuse = fault.Contains("30 s", StringComparison.Ordinal) ? TimeSpan.FromSeconds(30) : TimeSpan.FromSeconds(3);
            var armed = proxy.Arm(fault switch
            {
                _ when fault.StartsWith("cut before", StringComparison.Ordinal) => ProxyFault.OnStatement(CheckpointInsert, occurrence, ProxyFaultAction.CutBeforeServer),
                _ when fault.StartsWith("cut after", StringComparison.Ordinal) => ProxyFault.OnStatement(CheckpointInsert, occurrence, ProxyFaultAction.CutAfterServerAnswered),
                _ => ProxyFault.OnStatement(CheckpointInsert, occurrence, ProxyFaultAction.DropAllAndRefuse, refuse),
            });

            var reportPath = env.PathOf("faulted.json");
            CliResult faulted;
            var watch = Stopwatch.StartNew();
            await using (var changes = BackgroundChanges.Start(env.Source, random.Next()))
            {
                faulted = await CliProcess.RunAsync("run", "--config", config, "--report", reportPath);
                await changes.StopAsync();
            }

            var ran = watch.Elapsed;
            proxy.AcceptAgain(); // a long refusal ends once the run is over: the next run finds the store again
            var fired = armed.IsCompletedSuccessfully ? await armed : null;
            proxy.Disarm();
            var report = RunReport.TryRead(reportPath);
            faultText = fired is null
                ? $"{fault}: never fired (checkpoint insert #{occurrence} not seen)"
                : string.Create(CultureInfo.InvariantCulture, $"{fired} (insert #{occurrence})");
            var faultedText = RunVerdicts.Summary(faulted, report) + string.Create(CultureInfo.InvariantCulture, $" in {ran.TotalSeconds:0.0} s")
                + (faulted.ExitCode == 0 ? (report?.Warns("retr") == true ? ", warned of a retry" : "") : ": " + RunVerdicts.FirstError(faulted));
            if (fired is null)
            {
                problems.Add($"the fault did not fire: the run never sent checkpoint insert #{occurrence} ({RunVerdicts.Summary(faulted, report)})");
            }

            if (faulted.ExitCode == 0)
            {
                if (RunVerdicts.Completed(faulted, report) is { } notCompleted)
                {
                    problems.Add("the faulted run exited 0 but did not complete: " + notCompleted);
                }
            }
            else if (RunVerdicts.ClearFailure(faulted, report) is { } unclear)
            {
                problems.Add("the faulted run failed without a clear message: " + unclear);
            }
            else if ((faulted.StandardOutput + faulted.StandardError).Contains("another writer", StringComparison.OrdinalIgnoreCase))
            {
                // Only this run writes here: its own checkpoint, committed before the reply was lost, is not a rival's.
                problems.Add("the faulted run blamed another writer, but it was the only one (its own insert had committed before the connection was cut): " + RunVerdicts.FirstError(faulted));
            }

            var nextPath = env.PathOf("next.json");
            var next = await CliProcess.RunAsync("run", "--config", config, "--report", nextPath);
            var nextReport = RunReport.TryRead(nextPath);
            recoveryText = $"faulted run {faultedText}; next run {RunVerdicts.Summary(next, nextReport)}";
            if (RunVerdicts.Completed(next, nextReport) is { } nextProblem)
            {
                problems.Add("the next run did not complete: " + nextProblem);
            }
            else if (await env.CompareAsync() is { } difference)
            {
                problems.Add("destination differs from source after the next run:\n" + difference);
            }
        }
        finally
        {
            table.Add("state store outage", 1, seed, faultText, recoveryText, problems.Count == 0 ? "ok" : "FAIL: " + problems[0].Split('\n')[0]);
            table.Publish();
        }

        Assert.True(problems.Count == 0, $"{fault} (seed {seed}):\n{string.Join("\n", problems)}");
    }
}
