using System.Diagnostics;
using System.Globalization;
using DeltaSync.Cli.Tests;
using DeltaSync.FaultInjection.Tests.Infrastructure;
using Xunit.Abstractions;

namespace DeltaSync.FaultInjection.Tests.Trials;

/// <summary>
/// <c>deltasync run</c> SIGKILLed at a random moment (seeded) while the source keeps changing, more changes before the
/// restart, then a recovery run: the destination equals the source row for row, nothing lost or doubled, and the
/// recovery report says it resumed an unfinished run. Each capture method gets <see cref="FaultSettings.TrialsPerMethod"/>
/// trials against one evolving source (the first kill lands in the initial snapshot, later ones in incremental runs
/// after a bulk change), and ends with an idle run that must write nothing.
/// </summary>
public sealed class SigkillTrials
{
    // Chunks of 2000 of the 10 000 rows: the first kill lands in a snapshot taken in chunks between reads of the log.
    private const string Changelog = "cdc: {changelog: {type: postgres_wal, snapshot_chunk_size: 2000}}";

    private static readonly Dictionary<string, KillMethod> Methods = new[]
    {
        KillMethod.Sqlite("sqlite/timestamp", "{name: items, cdc_method: timestamp}", hardDeletes: false),
        KillMethod.Sqlite("sqlite/version-sequence_field", "{name: items, cdc_method: version, sequence_field: seq}", hardDeletes: false),
        KillMethod.Sqlite("sqlite/version-version_field", "{name: items, cdc_method: version, version_field: row_version}", hardDeletes: true),
        KillMethod.Sqlite("sqlite/trigger", "{name: items, cdc_method: trigger}", hardDeletes: true),
        KillMethod.Sqlite("sqlite/polling", "{name: items, cdc_method: polling}", hardDeletes: true),
        KillMethod.Postgres("pg/timestamp", "{name: items, cdc_method: timestamp}", hardDeletes: false, events: false, pgDestination: true),
        KillMethod.Postgres("pg/trigger", "{name: items, cdc_method: trigger}", hardDeletes: true, events: false, pgDestination: true),
        KillMethod.Postgres("pg/changelog", "{name: items, cdc_method: changelog}, {name: events, cdc_method: changelog}", hardDeletes: true, events: true, pgDestination: true, Changelog),
        KillMethod.Postgres("pg-to-sqlite/changelog", "{name: items, cdc_method: changelog}, {name: events, cdc_method: changelog}", hardDeletes: true, events: true, pgDestination: false, Changelog),
    }.ToDictionary(m => m.Name);

    private readonly ITestOutputHelper _output;

    public SigkillTrials(ITestOutputHelper output)
    {
        _output = output;
    }

    public static TheoryData<string> MethodNames() => new(Methods.Keys);

    [Theory]
    [MemberData(nameof(MethodNames))]
    public async Task Sigkill_at_a_random_moment_then_a_recovery_run_leaves_the_destination_equal_to_the_source(string method)
    {
        var spec = Methods[method];
        var table = new FaultTable($"SIGKILL during deltasync run, {method}", _output);
        var problems = new List<string>();
        try
        {
            await using var env = await spec.CreateAsync();
            await env.Source.CreateAsync(spec.Rows);
            var config = env.WriteConfig(spec.Tables, spec.BatchSize, spec.Blocks);
            var timing = new KillTiming(TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(0.5));
            for (var trial = 1; trial <= FaultSettings.TrialsPerMethod; trial++)
            {
                var seed = FaultSettings.SeedFor("sigkill/" + method, trial);
                var outcome = await RunTrialAsync(env, config, trial, seed, timing);
                table.Add(method, trial, seed, outcome.Fault, outcome.Recovery, outcome.Problem is null ? "ok" : "FAIL: " + outcome.Problem);
                if (outcome.Problem is not null)
                {
                    problems.Add($"trial {trial} (seed {seed}): {outcome.Problem}");
                }

                timing = timing.Next(outcome);
            }

            var idleReport = env.PathOf("idle.json");
            var idle = await CliProcess.RunAsync("run", "--config", config, "--report", idleReport);
            var idleRun = RunReport.TryRead(idleReport);
            var idleProblem = idle.ExitCode != 0 ? $"idle run exit {idle.ExitCode}: {idle.StandardError.Trim()}"
                : idleRun is null ? "idle run wrote no report"
                : idleRun.Writes != 0 ? $"idle run after the trials wrote {idleRun.Writes} row(s): a replay was not idempotent ({idleRun})"
                : await env.CompareAsync();
            table.Add(method, 0, 0, "none (idle run after the trials: must write nothing)", RunVerdicts.Summary(idle, idleRun), idleProblem is null ? "ok" : "FAIL: " + idleProblem);
            if (idleProblem is not null)
            {
                problems.Add("idle run: " + idleProblem);
            }
        }
        finally
        {
            table.Publish();
        }

        Assert.True(problems.Count == 0, $"{method}: {problems.Count} failed trial(s) (base seed {FaultSettings.BaseSeed}):\n{string.Join("\n", problems)}");
    }

    private static async Task<TrialOutcome> RunTrialAsync(SyncEnvironment env, string config, int trial, int seed, KillTiming timing)
    {
        var random = new Random(seed);
        if (trial > 1)
        {
            await env.Source.BulkMutateAsync(random); // work for the run that will be killed
        }

        var before = await env.CommittedVersionAsync();
        var finishedBefore = await env.FinishedRunsAsync();
        // One kill in five lands in startup (config, connections, leases, checkpoint load); the others at a random
        // moment of the work, counted from the run's first commit so that they do not all fall in process startup.
        var inStartup = random.Next(5) == 0;
        var fraction = random.NextDouble();
        bool killed;
        TimeSpan lasted;
        TimeSpan? firstCommit = null;
        TimeSpan delay;
        CliResult killedRun;
        await using (var changes = BackgroundChanges.Start(env.Source, random.Next()))
        {
            using var run = DeltasyncProcess.Start(null, "run", "--config", config, "--report", env.PathOf($"killed-{trial}.json"));
            if (inStartup)
            {
                delay = timing.Startup * fraction;
            }
            else
            {
                firstCommit = await WaitForCommitAsync(env, run, before);
                delay = (firstCommit ?? run.Elapsed) + (timing.Work * fraction * 1.1);
            }

            killed = await run.KillAtAsync(delay);
            lasted = run.Elapsed;
            killedRun = await run.WaitAsync();
            await changes.StopAsync();
        }

        var committed = await env.CommittedVersionAsync() - before;
        // Killed after it recorded its end in the state store: its work was done, there is nothing to resume.
        var finished = await env.FinishedRunsAsync() > finishedBefore;
        var fault = !killed
            ? string.Create(CultureInfo.InvariantCulture, $"none: the run ended (exit {killedRun.ExitCode}) in {lasted.TotalSeconds:0.00} s, before the kill at {delay.TotalSeconds:0.00} s")
            : inStartup
                ? string.Create(CultureInfo.InvariantCulture, $"SIGKILL in startup at {delay.TotalSeconds:0.00} s; {committed} batch(es) committed")
                : string.Create(CultureInfo.InvariantCulture, $"SIGKILL at {delay.TotalSeconds:0.00} s, {(delay - firstCommit!.Value).TotalSeconds:0.00} s after the first commit; {committed} batch(es) committed")
                    + (finished ? ", after the run had recorded its end" : "");

        // Changes between the kill and the restart.
        await env.Source.MutateAsync(random, 40 + random.Next(60));

        var reportPath = env.PathOf($"recovery-{trial}.json");
        var watch = Stopwatch.StartNew();
        var recovery = await CliProcess.RunAsync("run", "--config", config, "--report", reportPath);
        var seconds = watch.Elapsed.TotalSeconds;
        var report = RunReport.TryRead(reportPath);
        var summary = string.Create(CultureInfo.InvariantCulture, $"exit {recovery.ExitCode} in {seconds:0.0} s") + (report is null ? ", no report" : $", {report.Status} +{report.Inserted} ~{report.Updated} -{report.Deleted}");

        string? problem = null;
        if (!killed && killedRun.ExitCode != 0)
        {
            problem = $"the run meant to be killed failed on its own: {killedRun}";
        }
        else if (recovery.ExitCode != 0)
        {
            problem = $"recovery run failed: {recovery}";
        }
        else if (report is null)
        {
            problem = "recovery run wrote no report";
        }
        else if (report.Status != "completed")
        {
            problem = $"recovery report status {report}";
        }
        else if (recovery.StandardError.Contains("   at ", StringComparison.Ordinal))
        {
            problem = "recovery run printed a stack trace: " + recovery.StandardError;
        }
        else if (await env.CompareAsync() is { } difference)
        {
            problem = "destination differs from source after recovery:\n" + difference;
        }
        else if (killed && committed > 0 && !finished && !report.Warns("resumed from checkpoint version"))
        {
            // The killed run had committed batches and never finished: the report must say the run picked up after it.
            problem = $"the recovery report does not say it resumed the killed run: {report}";
        }

        if (report is not null && report.Warns("resumed from checkpoint version"))
        {
            summary += "; warned: resumed unfinished run";
        }

        if (report is not null && report.Warns("recovered it from the destination"))
        {
            summary += "; warned: checkpoint recovered from destination";
        }

        return new TrialOutcome(fault, summary, problem, killed, finished, delay, lasted, firstCommit);
    }

    /// <summary>Polls the destination until the run commits a batch; the run's age then, or null when it ended first.</summary>
    private static async Task<TimeSpan?> WaitForCommitAsync(SyncEnvironment env, DeltasyncProcess run, long before)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (await env.CommittedVersionAsync() <= before)
        {
            if (run.HasExited)
            {
                return null;
            }

            Assert.True(DateTime.UtcNow < deadline, "the run committed nothing within 2 minutes");
            await Task.Delay(10);
        }

        return run.Elapsed;
    }

    private sealed record TrialOutcome(string Fault, string Recovery, string? Problem, bool Killed, bool Finished, TimeSpan Delay, TimeSpan Lasted, TimeSpan? FirstCommit);

    /// <summary>
    /// When kills land: <see cref="Startup"/> is how long a run takes to its first commit, <see cref="Work"/> how long it
    /// works after that. Both are measured trial by trial, so kills spread over the run on a fast machine and a slow one.
    /// </summary>
    private sealed record KillTiming(TimeSpan Startup, TimeSpan Work)
    {
        public KillTiming Next(TrialOutcome outcome)
        {
            var work = outcome switch
            {
                { Killed: false, FirstCommit: { } first } => outcome.Lasted - first, // ran to the end: the whole span
                { Finished: true, FirstCommit: { } first } => (outcome.Delay - first) * 0.8, // the kill came after the end
                _ => Work * 1.2, // killed while working: the span is longer than drawn
            };
            return new KillTiming(outcome.FirstCommit ?? Startup, TimeSpan.FromSeconds(Math.Clamp(work.TotalSeconds, 0.1, 10)));
        }
    }

    /// <summary>A capture method under test: where source and destination live and the table entries of its config.</summary>
    private sealed record KillMethod(string Name, string Tables, bool PostgresSource, bool PostgresDestination, bool HardDeletes, bool Events, string Blocks)
    {
        public int Rows => 10_000;

        public int BatchSize => PostgresSource ? 250 : 150;

        public static KillMethod Sqlite(string name, string tables, bool hardDeletes) => new(name, tables, false, false, hardDeletes, false, "");

        public static KillMethod Postgres(string name, string tables, bool hardDeletes, bool events, bool pgDestination, string blocks = "") =>
            new(name, tables, true, pgDestination, hardDeletes, events, blocks);

        public async Task<SyncEnvironment> CreateAsync() => PostgresSource
            ? await SyncEnvironment.WithPostgresSourceAsync(HardDeletes, Events, PostgresDestination)
            : SyncEnvironment.WithSqliteSource(HardDeletes);
    }
}
