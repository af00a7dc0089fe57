using System.Globalization;
using DeltaSync.Cli.Tests;
using DeltaSync.FaultInjection.Tests.Infrastructure;
using Xunit.Abstractions;

namespace DeltaSync.FaultInjection.Tests.Trials;

/// <summary>
/// The file state store on a small tmpfs that is full: the run fails with a clear message (no stack trace), the
/// checkpoint from before stays intact and valid (<c>deltasync state validate</c>), and once space is freed the next run
/// converges with nothing lost or doubled. Needs root to mount (CI runs as root); elsewhere it is skipped with the reason.
/// </summary>
public sealed class FullDiskTrials
{
    private readonly ITestOutputHelper _output;

    public FullDiskTrials(ITestOutputHelper output)
    {
        _output = output;
    }

    [TmpfsFact]
    public async Task Full_state_disk_fails_the_run_clearly_keeps_the_last_checkpoint_and_the_run_after_freeing_space_converges()
    {
        var seed = FaultSettings.SeedFor("full-disk", 1);
        var random = new Random(seed);
        var table = new FaultTable("Full disk under the file state store", _output);
        var problems = new List<string>();
        string faultText = "tmpfs of 1 MiB as the state folder, filled", recoveryText = "";
        try
        {
            await using var env = SyncEnvironment.WithSqliteSource(hardDeletes: true);
            using var disk = Tmpfs.Mount(env.PathOf("state"), 1024);
            await env.Source.CreateAsync(2_000);
            var config = env.WriteConfig("{name: items, cdc_method: trigger}", batchSize: 250, blocks: "state: {storage: {type: file, path: state}}");
            var first = await CliProcess.RunAsync("run", "--config", config, "--report", env.PathOf("first.json"));
            Assert.True(RunVerdicts.Completed(first, RunReport.TryRead(env.PathOf("first.json"))) is null, "the run before the fault failed: " + first);
            var versionBefore = NewestVersion(env);

            var filler = disk.Fill();
            faultText += string.Create(CultureInfo.InvariantCulture, $" ({new FileInfo(filler).Length / 1024} KiB filler; newest checkpoint v{versionBefore})");
            await env.Source.BulkMutateAsync(random);
            var reportPath = env.PathOf("full.json");
            CliResult full;
            await using (var changes = BackgroundChanges.Start(env.Source, random.Next()))
            {
                full = await CliProcess.RunAsync("run", "--config", config, "--report", reportPath);
                await changes.StopAsync();
            }

            var report = RunReport.TryRead(reportPath);
            recoveryText = $"full: {RunVerdicts.Summary(full, report)}: {RunVerdicts.FirstError(full)}";
            if (RunVerdicts.ClearFailure(full, report, "space") is { } unclear)
            {
                problems.Add("the run on a full disk did not fail with a clear message: " + unclear);
            }

            var validate = await CliProcess.RunAsync("state", "validate", "--config", config);
            var versionAfter = NewestVersion(env);
            recoveryText += $"; state validate exit {validate.ExitCode}, newest v{versionAfter}";
            if (validate.ExitCode != 0)
            {
                problems.Add("state validate finds the state invalid after the failed run: " + validate);
            }

            if (versionAfter != versionBefore)
            {
                problems.Add($"the newest checkpoint changed from v{versionBefore} to v{versionAfter} although nothing could be saved");
            }

            File.Delete(filler);
            var nextPath = env.PathOf("next.json");
            var next = await CliProcess.RunAsync("run", "--config", config, "--report", nextPath);
            var nextReport = RunReport.TryRead(nextPath);
            recoveryText += "; space freed, next run " + RunVerdicts.Summary(next, nextReport);
            if (RunVerdicts.Completed(next, nextReport) is { } nextProblem)
            {
                problems.Add("the run after freeing space did not complete: " + nextProblem);
            }
            else if (await env.CompareAsync() is { } difference)
            {
                problems.Add("destination differs from source:\n" + difference);
            }
        }
        finally
        {
            table.Add("full disk", 1, seed, faultText, recoveryText, problems.Count == 0 ? "ok" : "FAIL: " + problems[0].Split('\n')[0]);
            table.Publish();
        }

        Assert.True(problems.Count == 0, $"full disk (seed {seed}):\n{string.Join("\n", problems)}");
    }

    /// <summary>The newest checkpoint version file of <c>items</c> in the file store.</summary>
    private static long NewestVersion(SyncEnvironment env) =>
        Directory.EnumerateFiles(Path.Combine(env.PathOf("state"), "checkpoints"), "*.json", SearchOption.AllDirectories)
            .Select(p => long.TryParse(Path.GetFileNameWithoutExtension(p), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : 0)
            .DefaultIfEmpty(0)
            .Max();
}
