using System.Diagnostics;
using System.Text.Json;
using DeltaSync.FaultInjection.Tests.Infrastructure;
using DeltaSync.Postgres.Tests;

namespace DeltaSync.FaultInjection.Tests.Trials;

/// <summary>
/// A PostgreSQL → PostgreSQL initial load by binary COPY pass-through, SIGKILLed while the COPY is running: the load is
/// one destination transaction, so nothing of it remains, and the next run loads the table again — every row once.
/// </summary>
public sealed class BulkLoadKillTrials
{
    private const int Rows = 200_000;

    [Fact]
    public async Task Sigkill_during_the_binary_copy_leaves_nothing_and_the_rerun_loads_every_row_once()
    {
        await using var env = await SyncEnvironment.WithPostgresSourceAsync(hardDeletes: false, hasEvents: false, postgresDestination: true);
        await env.Source.CreateAsync(Rows, padding: 200);
        var config = env.WriteConfig("{name: items, cdc_method: timestamp}", batchSize: 1000);
        var destination = env.PgDestination!;

        using (var run = DeltasyncProcess.Start(null, "run", "--config", config, "--report", env.PathOf("killed.json")))
        {
            var watch = Stopwatch.StartNew();
            while (await CopyingAsync(destination) is 0)
            {
                Assert.False(run.HasExited, "the run ended before its COPY was seen (the table may be too small to catch it)");
                Assert.True(watch.Elapsed < TimeSpan.FromMinutes(2), "no COPY into the destination within 2 minutes");
                await Task.Delay(5);
            }

            Assert.True(await run.KillAtAsync(TimeSpan.Zero), "the run exited before it could be killed mid-COPY");
        }

        // The server aborts the dead client's transaction once it notices: no row, no ledger entry, no checkpoint stays.
        var settle = Stopwatch.StartNew();
        while (await destination.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'") > 0)
        {
            Assert.True(settle.Elapsed < TimeSpan.FromMinutes(1), "the killed run's transaction did not end");
            await Task.Delay(20);
        }

        Assert.Equal(0L, await destination.ScalarAsync<long>("SELECT count(*) FROM items"));
        Assert.Equal(0L, await destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger"));
        Assert.Equal(0L, await destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.committed_checkpoints"));

        var reportPath = env.PathOf("recovery.json");
        var recovery = await DeltasyncProcess.RunAsync(null, "run", "--config", config, "--report", reportPath);
        Assert.True(recovery.ExitCode == 0, recovery.StandardError);
        var report = RunReport.TryRead(reportPath)!;
        Assert.Equal("completed", report.Status);
        Assert.Equal(Rows, report.Inserted);
        Assert.Equal("binary_copy", InitialLoad(reportPath));
        Assert.Null(await env.CompareAsync());

        var idlePath = env.PathOf("idle.json");
        var idle = await DeltasyncProcess.RunAsync(null, "run", "--config", config, "--report", idlePath);
        Assert.True(idle.ExitCode == 0, idle.StandardError);
        Assert.Equal(0, RunReport.TryRead(idlePath)!.Writes);
    }

    private static Task<long> CopyingAsync(PgDatabase destination) =>
        destination.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY %FROM STDIN%' AND state = 'active'");

    private static string? InitialLoad(string reportPath)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(reportPath));
        return json.RootElement.GetProperty("tables")[0].TryGetProperty("initial_load", out var value) ? value.GetString() : null;
    }
}
