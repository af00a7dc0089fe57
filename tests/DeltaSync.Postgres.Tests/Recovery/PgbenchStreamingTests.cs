using System.Diagnostics;
using System.Globalization;

namespace DeltaSync.Postgres.Tests.Recovery;

/// <summary>
/// The acceptance scenario, shortened for CI: pgbench writes to the source while <c>deltasync run --follow</c>
/// streams the four pgbench tables from the WAL; the engine is SIGKILLed mid-stream and restarted. After it catches up,
/// every table equals the source row for row — <c>pgbench_history</c>, which has no primary key, included — with no
/// duplicate. <c>DELTASYNC_PGBENCH_SECONDS</c> lengthens the load (60 for the full run).
/// </summary>
public sealed class PgbenchStreamingTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("deltasync-pgbench-").FullName;
    private PgDatabase _source = null!;
    private PgDatabase _destination = null!;

    public async Task InitializeAsync()
    {
        _source = await PgDatabase.CreateAsync("bench_src");
        _destination = await PgDatabase.CreateAsync("bench_dst");
    }

    public async Task DisposeAsync()
    {
        await _source.DisposeAsync();
        await _destination.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Pgbench_load_with_the_engine_killed_and_restarted_ends_with_equal_tables()
    {
        var seconds = int.TryParse(Environment.GetEnvironmentVariable("DELTASYNC_PGBENCH_SECONDS"), CultureInfo.InvariantCulture, out var s) ? s : 12;
        await RunPgbenchAsync("-i", "-s", "1", "-q");
        var config = Path.Combine(_dir, "pgbench.yaml");
        await File.WriteAllTextAsync(config, $"""
            sync:
              name: pgbench
              source:
                connection: "{_source.Uri}"
                tables: [pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history]
              destination:
                connection: "{_destination.Uri}"
              cdc_method: changelog
              frequency: realtime
              batch_size: 2000
            cdc:
              changelog:
                type: postgres_wal
              polling:
                interval: "200ms"
            """);

        var load = RunPgbenchAsync("-n", "-c", "4", "-j", "2", "-T", seconds.ToString(CultureInfo.InvariantCulture));
        using (var first = StartFollow(config))
        {
            await Task.Delay(TimeSpan.FromSeconds(seconds / 3.0));
            await AssertRunningAsync(first, "the follower");
            first.Kill(entireProcessTree: true);
            await first.WaitForExitAsync();
        }

        using (var second = StartFollow(config))
        {
            await load;
            await Task.Delay(TimeSpan.FromSeconds(1));
            await AssertRunningAsync(second, "the restarted follower");
            second.Kill(entireProcessTree: true);
            await second.WaitForExitAsync();
        }

        // Catch up with whatever the killed follower had not applied, then compare.
        var catchUp = await DeltaSync.Cli.Tests.CliProcess.RunAsync("run", "--config", config, "--report", Path.Combine(_dir, "catch-up.json"));
        Assert.True(catchUp.ExitCode == 0, catchUp.ToString());
        Assert.True(await _source.ScalarAsync<long>("SELECT count(*) FROM pgbench_history") > 100, "pgbench wrote too little to prove anything");
        foreach (var query in new[]
        {
            "SELECT aid, bid, abalance, filler FROM pgbench_accounts ORDER BY aid",
            "SELECT bid, bbalance, filler FROM pgbench_branches ORDER BY bid",
            "SELECT tid, bid, tbalance, filler FROM pgbench_tellers ORDER BY tid",
            "SELECT tid, bid, aid, delta, mtime, filler, count(*) FROM pgbench_history GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6",
            "SELECT count(*) FROM pgbench_history",
        })
        {
            Engine.PgSyncWorkspace.AssertSameRows(await _source.RowsAsync(query), await _destination.RowsAsync(query), query);
        }
    }

    private readonly Dictionary<Process, Task<string>> _errors = [];

    private async Task AssertRunningAsync(Process process, string what)
    {
        if (process.HasExited)
        {
            Assert.Fail($"{what} stopped on its own (exit code {process.ExitCode}): {await _errors[process]}");
        }
    }

    private Process StartFollow(string config)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { Path.Combine(AppContext.BaseDirectory, "deltasync.dll"), "run", "--follow", "--config", config })
        {
            start.ArgumentList.Add(argument);
        }

        var process = Process.Start(start)!;
        _ = process.StandardOutput.ReadToEndAsync();
        _errors[process] = process.StandardError.ReadToEndAsync();
        return process;
    }

    private async Task RunPgbenchAsync(params string[] arguments)
    {
        var server = PostgresConnectionFactory.Parse(PgDatabase.ServerUri);
        var bin = Environment.GetEnvironmentVariable("DELTASYNC_PG_BIN") is { Length: > 0 } dir ? Path.Combine(dir, "pgbench") : "pgbench";
        var start = new ProcessStartInfo(bin) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments.Concat(["-h", server.Host!, "-p", server.Port.ToString(CultureInfo.InvariantCulture), "-U", server.Username!, _source.Name]))
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["PGPASSWORD"] = server.Password;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"pgbench {string.Join(' ', arguments)} failed: {await output}{await error}");
    }
}
