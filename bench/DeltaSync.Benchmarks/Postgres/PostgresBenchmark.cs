using System.Diagnostics;
using DeltaSync.Core.Pipeline;
using Npgsql;

namespace DeltaSync.Benchmarks.Postgres;

/// <summary>
/// <c>--postgres URI</c>: PostgreSQL → PostgreSQL on one server, side by side in one run. Anchors: the binary COPY pipe
/// and native logical replication's initial copy. DeltaSync, per capture method (timestamp, polling): the initial
/// load into an empty database, a run with nothing changed, and a run after a share of the rows was updated.
/// Every database has a unique name and is dropped at the end, also after a failure or Ctrl+C.
/// </summary>
public static class PostgresBenchmark
{
    private const int Seed = 20_240_601;
    private static readonly string[] Methods = ["timestamp", "polling"];

    /// <returns>0 when every check passed, 1 when one failed.</returns>
    public static async Task<int> RunAsync(DeltaSyncCli cli, BenchmarkOptions options)
    {
        ArgumentNullException.ThrowIfNull(cli);
        ArgumentNullException.ThrowIfNull(options);
        using var cancellation = new CancellationTokenSource();
        ConsoleCancelEventHandler stop = (_, e) =>
        {
            // Let the clean-up below drop the databases; the deltasync child gets the same Ctrl+C and stops.
            e.Cancel = true;
            cancellation.Cancel();
        };
        Console.CancelKeyPress += stop;
        try
        {
            return await RunAsync(cli, options, cancellation.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("# cancelled; the benchmark's databases were dropped");
            return 1;
        }
        catch (Exception e) when (e is NpgsqlException or SyncException or TimeoutException)
        {
            // The server disposal above has already dropped what this run created.
            Console.Error.WriteLine($"PostgreSQL benchmark failed: {e.Message}");
            return 1;
        }
        finally
        {
            Console.CancelKeyPress -= stop;
        }
    }

    private static async Task<int> RunAsync(DeltaSyncCli cli, BenchmarkOptions options, CancellationToken cancellationToken)
    {
        if (options.PostgresStream)
        {
            return await PgStreamBenchmark.RunAsync(cli, options, cancellationToken).ConfigureAwait(false);
        }

        var folder = Path.Combine(options.WorkDirectory, "postgres");
        if (Directory.Exists(folder))
        {
            Directory.Delete(folder, recursive: true);
        }

        Directory.CreateDirectory(folder);
        var startLoad = MachineDescription.LoadAverage();
        await using var server = await BenchmarkServer.ConnectAsync(options.PostgresUri!, cancellationToken).ConfigureAwait(false);
        Console.WriteLine($"# server: {server.Description}");
        var source = await server.CreateDatabaseAsync("src", cancellationToken).ConfigureAwait(false);
        var watch = Stopwatch.StartNew();
        await PgItemsTable.GenerateAsync(source, options.Rows, cancellationToken).ConfigureAwait(false);
        var checksum = await PgTableChecksum.ComputeAsync(source, cancellationToken).ConfigureAwait(false);
        Console.WriteLine($"# generated {options.Rows:N0} rows in {watch.Elapsed.TotalSeconds:0.0} s in database {source.Name}: {checksum}");

        var scenarios = Methods.Select(m => new PgSyncScenario(cli, folder, m, source, options.Rows)).ToList();
        var rounds = new List<List<PgMeasurement>>();
        for (var round = 0; round < options.Rounds; round++)
        {
            Console.WriteLine($"# round {round + 1} of {options.Rounds}; {MachineDescription.LoadAverage()}");
            var results = new List<PgMeasurement>
            {
                await CopyPipeAsync(server, source, checksum, round, cancellationToken).ConfigureAwait(false),
            };
            if (server.LogicalReplication)
            {
                results.Add(await NativeCopyAsync(server, source, checksum, round, cancellationToken).ConfigureAwait(false));
            }
            else if (round == 0)
            {
                Console.WriteLine("# native logical replication skipped: the server's wal_level is not 'logical'");
            }

            foreach (var scenario in scenarios)
            {
                var (runs, after) = await DeltaSyncAsync(server, scenario, source, checksum, options, round, cancellationToken).ConfigureAwait(false);
                results.AddRange(runs);
                checksum = after;
            }

            rounds.Add(results);
        }

        var summaries = Enumerable.Range(0, rounds[0].Count).Select(c => PgSummary.Summarize(rounds.Select(r => r[c]).ToList())).ToList();
        Console.WriteLine();
        Console.WriteLine($"PostgreSQL → PostgreSQL, {options.Rows:N0} rows × 8 columns; min and median of {options.Rounds} round(s); peak RSS is the largest seen; batch_size {DeltaSyncCli.BatchSize:N0}.");
        Console.WriteLine($"Machine: {MachineDescription.Describe()}; {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; {startLoad} at the start, {MachineDescription.LoadAverage()} at the end");
        Console.WriteLine($"Server: {server.Description}");
        Console.WriteLine();
        Console.Write(PgResultTable.ToMarkdown(summaries));
        return summaries.All(r => r.Passed) ? 0 : 1;
    }

    private static async Task<PgMeasurement> CopyPipeAsync(BenchmarkServer server, BenchmarkDatabase source, PgTableChecksum checksum, int round, CancellationToken cancellationToken)
    {
        const string label = "Anchor: binary COPY pipe (TO STDOUT → FROM STDIN)";
        var destination = await server.CreateDatabaseAsync($"copy{round + 1}", cancellationToken).ConfigureAwait(false);
        await PgItemsTable.TidyAsync(source, cancellationToken).ConfigureAwait(false);
        var elapsed = await PgCopyAnchors.BinaryCopyPipeAsync(source, destination, cancellationToken).ConfigureAwait(false);
        var check = PgTableChecksum.Compare(checksum, await PgTableChecksum.ComputeAsync(destination, cancellationToken).ConfigureAwait(false));
        await server.DropDatabaseAsync(destination, cancellationToken).ConfigureAwait(false);
        Console.WriteLine($"# {label}: {elapsed.TotalSeconds:0.000} s; check: {check}");
        return new PgMeasurement(label, PgCaseKind.CopyPipeAnchor, checksum.Rows, elapsed, null, null, null, check);
    }

    private static async Task<PgMeasurement> NativeCopyAsync(BenchmarkServer server, BenchmarkDatabase source, PgTableChecksum checksum, int round, CancellationToken cancellationToken)
    {
        const string label = "Anchor: logical replication initial copy (to state r)";
        var destination = await server.CreateDatabaseAsync($"native{round + 1}", cancellationToken).ConfigureAwait(false);
        await PgItemsTable.TidyAsync(source, cancellationToken).ConfigureAwait(false);
        var times = await PgCopyAnchors.LogicalReplicationInitialCopyAsync(source, destination, destination.Name, cancellationToken).ConfigureAwait(false);
        var check = PgTableChecksum.Compare(checksum, await PgTableChecksum.ComputeAsync(destination, cancellationToken).ConfigureAwait(false));
        await server.DropDatabaseAsync(destination, cancellationToken).ConfigureAwait(false);
        Console.WriteLine($"# {label}: {times.Ready.TotalSeconds:0.000} s (copy committed after {times.DataCommitted.TotalSeconds:0.000} s); check: {check}");
        return new PgMeasurement(label, PgCaseKind.NativeCopyAnchor, checksum.Rows, times.Ready, null, null, null, check);
    }

    /// <summary>
    /// One method's three runs into a fresh destination; returns them and the source's checksum after the change.
    /// Changes of earlier rounds are first aged out of the tolerance window, so every round starts from the same state.
    /// </summary>
    private static async Task<(List<PgMeasurement> Runs, PgTableChecksum Checksum)> DeltaSyncAsync(
        BenchmarkServer server, PgSyncScenario scenario, BenchmarkDatabase source, PgTableChecksum checksum, BenchmarkOptions options, int round, CancellationToken cancellationToken)
    {
        var destination = await server.CreateDatabaseAsync($"{scenario.Method}{round + 1}", cancellationToken).ConfigureAwait(false);
        await PgItemsTable.AgeRecentChangesAsync(source, cancellationToken).ConfigureAwait(false);
        checksum = await PgTableChecksum.ComputeAsync(source, cancellationToken).ConfigureAwait(false);
        await PgItemsTable.TidyAsync(source, cancellationToken).ConfigureAwait(false);
        var runs = new List<PgMeasurement>
        {
            await scenario.InitialLoadAsync($"DeltaSync {scenario.Method}: initial load, empty destination", destination, checksum, cancellationToken).ConfigureAwait(false),
            await scenario.NoChangeAsync($"DeltaSync {scenario.Method}: no change", checksum, cancellationToken).ConfigureAwait(false),
        };

        var seed = Seed + (round * Methods.Length) + Array.IndexOf(Methods, scenario.Method);
        var changed = await PgItemsTable.ChangeRowsAsync(source, options.Rows, options.ChangedRows, seed, cancellationToken).ConfigureAwait(false);
        checksum = await PgTableChecksum.ComputeAsync(source, cancellationToken).ConfigureAwait(false);
        runs.Add(await scenario.ChangedAsync($"DeltaSync {scenario.Method}: {options.ChangedPercent:0.##}% rows updated", changed, checksum, cancellationToken).ConfigureAwait(false));
        await server.DropDatabaseAsync(destination, cancellationToken).ConfigureAwait(false);
        return (runs, checksum);
    }
}
