using System.Diagnostics;
using System.Globalization;
using System.Text;
using Npgsql;

namespace DeltaSync.Benchmarks.Postgres;

/// <summary>
/// <c>--postgres URI --postgres-stream</c>: streaming from the write-ahead log, native logical replication and
/// DeltaSync (<c>cdc_method: changelog</c>, <c>run --follow</c>) one after the other on the same source table, each
/// into its own destination database. For each consumer: (b) the catch-up after 100-row update transactions over the
/// whole table, then (c) the lag under a steady load of single-row updates. Only one consumer is attached at a time,
/// so neither decodes WAL while the other is measured.
/// </summary>
public static class PgStreamBenchmark
{
    public const int SteadyRate = 2_000;
    private static readonly TimeSpan SteadyDuration = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan FollowStartTimeout = TimeSpan.FromMinutes(5);
    private const string SourceVariable = "DELTASYNC_BENCH_PG_SOURCE";
    private const string DestinationVariable = "DELTASYNC_BENCH_PG_DESTINATION";

    private sealed record ConsumerResult(string Consumer, CatchUpResult CatchUp, SteadyLoadResult Steady, double? ClientCpu, double? ServerCpu, double? WalsenderCpu);

    /// <returns>0 when every check passed, 1 when one failed.</returns>
    public static async Task<int> RunAsync(DeltaSyncCli cli, BenchmarkOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(cli);
        ArgumentNullException.ThrowIfNull(options);
        var folder = Path.Combine(options.WorkDirectory, "postgres-stream");
        if (Directory.Exists(folder))
        {
            Directory.Delete(folder, recursive: true);
        }

        Directory.CreateDirectory(folder);
        var startLoad = MachineDescription.LoadAverage();
        await using var server = await BenchmarkServer.ConnectAsync(options.PostgresUri!, cancellationToken).ConfigureAwait(false);
        Console.WriteLine($"# server: {server.Description}");
        if (!server.LogicalReplication)
        {
            Console.Error.WriteLine("# --postgres-stream needs wal_level = logical on the server");
            return 1;
        }

        var source = await server.CreateDatabaseAsync("src", cancellationToken).ConfigureAwait(false);
        await PgItemsTable.GenerateAsync(source, options.Rows, cancellationToken).ConfigureAwait(false);
        Console.WriteLine($"# generated {options.Rows:N0} rows in database {source.Name}");

        var results = new List<ConsumerResult>();
        for (var round = 0; round < options.Rounds; round++)
        {
            Console.WriteLine($"# round {round + 1} of {options.Rounds}; {MachineDescription.LoadAverage()}");
            results.Add(await NativeAsync(server, source, options, round, cancellationToken).ConfigureAwait(false));
            results.Add(await DeltaSyncAsync(cli, server, folder, source, options, round, cancellationToken).ConfigureAwait(false));
        }

        Console.WriteLine();
        Console.WriteLine(
            $"PostgreSQL WAL streaming, {options.Rows:N0}-row items table; (b) {options.Rows / PgStreamLoad.CatchUpTransactionRows:N0} transactions × " +
            $"{PgStreamLoad.CatchUpTransactionRows} updated rows; (c) single-row updates at {SteadyRate:N0}/s for {SteadyDuration.TotalSeconds:0} s, lag sampled every 100 ms.");
        Console.WriteLine($"Machine: {MachineDescription.Describe()}; {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; {startLoad} at the start, {MachineDescription.LoadAverage()} at the end");
        Console.WriteLine($"Server: {server.Description}");
        Console.WriteLine();
        Console.Write(ToMarkdown(results));
        return results.All(r => r.CatchUp.Check.StartsWith("ok", StringComparison.Ordinal) && r.Steady.Check.StartsWith("ok", StringComparison.Ordinal)) ? 0 : 1;
    }

    private static async Task<ConsumerResult> NativeAsync(BenchmarkServer server, BenchmarkDatabase source, BenchmarkOptions options, int round, CancellationToken cancellationToken)
    {
        const string consumer = "native logical replication";
        var destination = await server.CreateDatabaseAsync($"nstream{round + 1}", cancellationToken).ConfigureAwait(false);
        try
        {
            await PgItemsTable.TidyAsync(source, cancellationToken).ConfigureAwait(false);
            await using (await PgNativeSubscription.StartAsync(source, destination, destination.Name, cancellationToken).ConfigureAwait(false))
            {
                Console.WriteLine($"# {consumer}: subscribed, table ready");
                return await MeasureAsync(consumer, source, destination, null, options, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            await server.DropDatabaseAsync(destination, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static async Task<ConsumerResult> DeltaSyncAsync(
        DeltaSyncCli cli, BenchmarkServer server, string folder, BenchmarkDatabase source, BenchmarkOptions options, int round, CancellationToken cancellationToken)
    {
        const string consumer = "DeltaSync changelog, run --follow";
        var destination = await server.CreateDatabaseAsync($"dstream{round + 1}", cancellationToken).ConfigureAwait(false);
        var slot = destination.Name;
        try
        {
            Environment.SetEnvironmentVariable(SourceVariable, source.Uri);
            Environment.SetEnvironmentVariable(DestinationVariable, destination.Uri);
            var config = WriteConfig(folder, $"stream{round + 1}", slot);
            await PgItemsTable.TidyAsync(source, cancellationToken).ConfigureAwait(false);

            // The initial snapshot is a one-pass run of its own, as a user would start: the follow process then only streams.
            var initial = await ProcessMeasurement.RunAsync(cli.Program, cli.Arguments("run", "--config", config, "-v"), folder).ConfigureAwait(false);
            await File.WriteAllTextAsync(Path.ChangeExtension(config, ".initial.log"), initial.Output, cancellationToken).ConfigureAwait(false);
            var loaded = PgTableChecksum.Compare(
                await PgTableChecksum.ComputeAsync(source, cancellationToken).ConfigureAwait(false),
                await PgTableChecksum.ComputeAsync(destination, cancellationToken).ConfigureAwait(false));
            Console.WriteLine($"# {consumer}: initial snapshot run exit {initial.ExitCode} after {initial.Elapsed.TotalSeconds:0.0} s; check: {loaded}");
            if (initial.ExitCode != 0 || !loaded.StartsWith("ok", StringComparison.Ordinal))
            {
                throw new TimeoutException($"DeltaSync's initial snapshot failed (exit {initial.ExitCode}, {loaded}); output:\n{initial.Output}");
            }

            await using (var follow = PgFollowProcess.Start(cli, config, Path.ChangeExtension(config, ".follow.log")))
            {
                var watch = Stopwatch.StartNew();
                await follow.WaitUntilIdleAsync(FollowStartTimeout, cancellationToken).ConfigureAwait(false);
                Console.WriteLine($"# {consumer}: follow process idle after {watch.Elapsed.TotalSeconds:0.0} s");
                return await MeasureAsync(consumer, source, destination, follow.Pid, options, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            await DropSlotAsync(source, slot).ConfigureAwait(false);
            await server.DropDatabaseAsync(destination, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Both workloads against a consumer that is attached and idle. The destination gets an index on
    /// <c>updated_at</c> first (not timed, the same for both consumers), so the lag sampler's <c>max(updated_at)</c>
    /// is an index probe rather than a scan competing with the apply.
    /// </summary>
    private static async Task<ConsumerResult> MeasureAsync(
        string consumer, BenchmarkDatabase source, BenchmarkDatabase destination, int? clientPid, BenchmarkOptions options, CancellationToken cancellationToken)
    {
        await destination.ExecuteAsync($"CREATE INDEX IF NOT EXISTS items_updated_at ON {PgItemsTable.Table} (updated_at)", cancellationToken).ConfigureAwait(false);
        Console.WriteLine($"# {consumer}: (b) catch-up; {MachineDescription.LoadAverage()}");
        // Both consumers' slots are named after their destination database.
        var cpu = ConsumerCpu.Available ? await ConsumerCpu.StartAsync(source, destination, destination.Name, clientPid, cancellationToken).ConfigureAwait(false) : null;
        var catchUp = await PgStreamLoad.CatchUpAsync(source, destination, options.Rows, cancellationToken).ConfigureAwait(false);
        double? clientCpu = null, serverCpu = null, walsenderCpu = null;
        if (cpu is not null)
        {
            (clientCpu, serverCpu, walsenderCpu) = await cpu.StopAsync(cancellationToken).ConfigureAwait(false);
        }

        Console.WriteLine(
            $"#   {catchUp.Transactions:N0} transactions written in {catchUp.Writing.TotalSeconds:0.000} s; destination caught up {catchUp.CaughtUp.TotalSeconds:0.000} s " +
            $"after the first update; CPU: client {clientCpu?.ToString("0.00", CultureInfo.InvariantCulture) ?? "-"} s, server {serverCpu?.ToString("0.00", CultureInfo.InvariantCulture) ?? "-"} s " +
            $"(walsender {walsenderCpu?.ToString("0.00", CultureInfo.InvariantCulture) ?? "-"} s); check: {catchUp.Check}");
        Console.WriteLine($"# {consumer}: (c) steady load; {MachineDescription.LoadAverage()}");
        var steady = await PgStreamLoad.SteadyLoadAsync(source, destination, options.Rows, SteadyRate, SteadyDuration, cancellationToken).ConfigureAwait(false);
        Console.WriteLine(
            $"#   {steady.Changes:N0} changes in {steady.Writing.TotalSeconds:0.0} s ({steady.Rate:N0}/s); lag p50 {steady.Percentile(50) * 1000:0} ms, " +
            $"p99 {steady.Percentile(99) * 1000:0} ms, max {steady.LagSeconds.Max() * 1000:0} ms over {steady.LagSeconds.Count} samples; " +
            $"equal {steady.DrainedAfter.TotalSeconds:0.000} s after the load; check: {steady.Check}");
        return new ConsumerResult(consumer, catchUp, steady, clientCpu, serverCpu, walsenderCpu);
    }

    /// <summary>DeltaSync's slot, once the follow process has let go of it (its walsender ends a moment after the client).</summary>
    private static async Task DropSlotAsync(BenchmarkDatabase source, string slot)
    {
        await using var connection = await source.OpenAsync(CancellationToken.None).ConfigureAwait(false);
        await using var drop = new NpgsqlCommand(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", connection);
        drop.Parameters.Add(new NpgsqlParameter<string> { TypedValue = slot });
        await using var active = new NpgsqlCommand("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", connection);
        active.Parameters.Add(new NpgsqlParameter<string> { TypedValue = slot });
        var waited = Stopwatch.StartNew();
        while (waited.Elapsed < TimeSpan.FromMinutes(1))
        {
            await drop.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
            if ((long)(await active.ExecuteScalarAsync(CancellationToken.None).ConfigureAwait(false))! == 0)
            {
                return;
            }

            await Task.Delay(50).ConfigureAwait(false);
        }

        Console.Error.WriteLine($"# replication slot {slot} still active after a minute; left for the final clean-up");
    }

    /// <summary>
    /// <c>cdc_method: changelog</c> from the WAL, <c>frequency: realtime</c> polling every 100 ms, with the slot and
    /// publication named after the destination database, so they are unique on a shared server and easy to find.
    /// </summary>
    private static string WriteConfig(string folder, string name, string slot)
    {
        var path = Path.Combine(folder, name + ".yaml");
        File.WriteAllText(path, $$"""
            sync:
              source: {connection: "${{{SourceVariable}}}", tables: [{{PgItemsTable.Table}}]}
              destination: {connection: "${{{DestinationVariable}}}"}
              cdc_method: changelog
              frequency: realtime
              batch_size: {{DeltaSyncCli.BatchSize}}
            cdc:
              changelog: {type: postgres_wal, slot_name: {{slot}}, publication_name: {{slot}}}
              polling: {interval: "100ms"}

            """);
        return path;
    }

    /// <summary>"client + server = total" CPU seconds of (b); "-" for native replication's client (it has none).</summary>
    private static string Cpu(ConsumerResult r) =>
        r.ServerCpu is not { } server
            ? "-"
            : string.Create(CultureInfo.InvariantCulture, $"{(r.ClientCpu is { } c ? c.ToString("0.00", CultureInfo.InvariantCulture) : "-")} + {server:0.00} = {(r.ClientCpu ?? 0) + server:0.00}");

    private static string ToMarkdown(IReadOnlyList<ConsumerResult> results)
    {
        var text = new StringBuilder();
        text.AppendLine("| Consumer | (b) writes s | (b) caught up s | (b) CPU s client + server | (c) changes/s | (c) lag p50 ms | (c) lag p99 ms | (c) lag max ms | (c) samples | Check |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var r in results)
        {
            var ok = r.CatchUp.Check.StartsWith("ok", StringComparison.Ordinal) && r.Steady.Check.StartsWith("ok", StringComparison.Ordinal);
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Consumer} | {r.CatchUp.Writing.TotalSeconds:0.000} | {r.CatchUp.CaughtUp.TotalSeconds:0.000} | {Cpu(r)} | {r.Steady.Rate:N0} | " +
                $"{r.Steady.Percentile(50) * 1000:0} | {r.Steady.Percentile(99) * 1000:0} | {r.Steady.LagSeconds.Max() * 1000:0} | {r.Steady.LagSeconds.Count} | " +
                $"{(ok ? "ok: tables equal" : $"(b) {r.CatchUp.Check}; (c) {r.Steady.Check}")} |");
        }

        return text.ToString();
    }
}
