using System.Globalization;
using DeltaSync.Cli.Tests;
using DeltaSync.FaultInjection.Tests.Infrastructure;
using DeltaSync.Postgres.Tests;
using Xunit.Abstractions;

namespace DeltaSync.FaultInjection.Tests.Trials;

/// <summary>
/// A PostgreSQL destination reached through <see cref="FaultProxy"/>: the connection is cut (TCP reset) after a seeded
/// number of bytes while a large batch is being written by COPY. A transient error is retried with back-off, so the
/// run completes (exit 0) and its report warns of the retry; the destination then equals the source. When the run
/// fails instead, one more run is made and the table records whether that converged, but the trial fails.
/// </summary>
public sealed class DestinationCutTrials
{
    private const int Rows = 20_000;
    private const int BatchSize = 7_000;
    private readonly ITestOutputHelper _output;

    public DestinationCutTrials(ITestOutputHelper output)
    {
        _output = output;
    }

    [Theory]
    [InlineData("initial snapshot")]
    [InlineData("incremental run with ongoing changes")]
    public async Task Destination_connection_cut_mid_batch_is_retried_and_the_run_completes(string phase)
    {
        var seed = FaultSettings.SeedFor("destination-cut/" + phase, 1);
        var random = new Random(seed);
        var table = new FaultTable("PostgreSQL destination connection cut mid-batch (COPY)", _output);
        var problems = new List<string>();
        string faultText = phase, recoveryText = "";
        try
        {
            await using var env = await SyncEnvironment.WithPostgresSourceAsync(hardDeletes: true, hasEvents: false, postgresDestination: true);
            await using var proxy = ProxiedPostgres.Start();
            await env.Source.CreateAsync(Rows, padding: 120);
            var config = env.WriteConfig("{name: items, cdc_method: trigger}", BatchSize, destination: proxy.UriThrough(env.PgDestination!));
            var ongoing = phase.StartsWith("incremental", StringComparison.Ordinal);
            if (ongoing)
            {
                var initial = await CliProcess.RunAsync("run", "--config", config, "--report", env.PathOf("initial.json"));
                Assert.True(initial.ExitCode == 0, "the initial sync (no fault yet) failed: " + initial);
                // Every row changes: the incremental run writes three large batches.
                await ((PostgresWorkload)env.Source).Database.ExecuteAsync("UPDATE items SET qty = qty + 1, name = name || ' changed', updated_at = now()");
            }

            // Past the connection setup, schema and ledger reads; inside the first or second batch's COPY (~2 MB each).
            var cutAt = 300_000 + random.NextInt64(2_500_000);
            var armed = proxy.Arm(ProxyFault.AfterBytes(cutAt));
            var reportPath = env.PathOf("cut.json");
            CliResult run;
            await using (var changes = ongoing ? BackgroundChanges.Start(env.Source, random.Next()) : null)
            {
                run = await CliProcess.RunAsync("run", "--config", config, "--report", reportPath);
                if (changes is not null)
                {
                    await changes.StopAsync();
                }
            }

            var fired = armed.IsCompletedSuccessfully ? await armed : null;
            proxy.Disarm();
            var report = RunReport.TryRead(reportPath);
            faultText = string.Create(CultureInfo.InvariantCulture, $"{phase}: ") + (fired ?? $"never fired (the run sent {proxy.BytesToServer:N0} bytes, cut armed at {cutAt:N0})");
            recoveryText = RunVerdicts.Summary(run, report) + (run.ExitCode == 0 ? (report?.Warns("retr") == true ? ", warned of the retry" : ", no retry warning") : ": " + RunVerdicts.FirstError(run));
            if (fired is null)
            {
                problems.Add(faultText);
            }

            var firstRunFailed = RunVerdicts.Completed(run, report);
            if (firstRunFailed is not null)
            {
                problems.Add("the run with the cut did not complete (transient errors must be retried): " + firstRunFailed);
            }
            else if (!report!.Warns("retr"))
            {
                problems.Add($"the run completed but its report does not mention the retry: {report}");
            }

            if (firstRunFailed is not null || ongoing)
            {
                // Changes made while the run was going on may postdate its capture; one more run catches up.
                var againPath = env.PathOf("again.json");
                var again = await CliProcess.RunAsync("run", "--config", config, "--report", againPath);
                var againReport = RunReport.TryRead(againPath);
                recoveryText += $"; {(firstRunFailed is null ? "catch-up" : "second")} run {RunVerdicts.Summary(again, againReport)}";
                if (RunVerdicts.Completed(again, againReport) is { } againProblem)
                {
                    problems.Add("the run after it did not complete either: " + againProblem);
                }
            }

            if (await env.CompareAsync() is { } difference)
            {
                problems.Add("destination differs from source:\n" + difference);
                recoveryText += "; destination differs";
            }
            else
            {
                recoveryText += "; destination = source";
            }
        }
        finally
        {
            table.Add("destination cut", 1, seed, faultText, recoveryText, problems.Count == 0 ? "ok" : "FAIL: " + problems[0].Split('\n')[0]);
            table.Publish();
        }

        Assert.True(problems.Count == 0, $"{phase} (seed {seed}):\n{string.Join("\n", problems)}");
    }
}
