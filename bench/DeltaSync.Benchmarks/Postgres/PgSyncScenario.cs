namespace DeltaSync.Benchmarks.Postgres;

/// <summary>
/// DeltaSync from the source database into a destination database with one capture method, each run
/// <c>deltasync run --config METHOD.yaml --report FILE -v</c> as its own process. The config names the
/// databases through environment variables (which the child process inherits), so no password is written to disk.
/// After every run the report's counts and the destination's checksum are checked.
/// </summary>
public sealed class PgSyncScenario
{
    private const string SourceVariable = "DELTASYNC_BENCH_PG_SOURCE";
    private const string DestinationVariable = "DELTASYNC_BENCH_PG_DESTINATION";

    private readonly DeltaSyncCli _cli;
    private readonly string _folder;
    private readonly BenchmarkDatabase _source;
    private readonly long _rows;
    private readonly string _configPath;
    private BenchmarkDatabase? _destination;
    private int _runs;

    public PgSyncScenario(DeltaSyncCli cli, string folder, string method, BenchmarkDatabase source, long rows)
    {
        _cli = cli;
        _folder = folder;
        Method = method;
        _source = source;
        _rows = rows;
        _configPath = WriteConfig(folder, method);
    }

    /// <summary>The <c>cdc_method</c>: <c>timestamp</c> or <c>polling</c>.</summary>
    public string Method { get; }

    /// <summary>A run into a fresh, empty <paramref name="destination"/> with no state: every row is new.</summary>
    public Task<PgMeasurement> InitialLoadAsync(string label, BenchmarkDatabase destination, PgTableChecksum source, CancellationToken cancellationToken)
    {
        _destination = destination;
        ItemsDatabase.DeleteDatabase(Path.Combine(_folder, Method + ".state.db"));
        return RunAsync(label, PgCaseKind.InitialLoad, s => s.Inserted == _rows && s.Updated == 0 && s.Deleted == 0, $"inserted {_rows:N0}", source, cancellationToken);
    }

    /// <summary>Nothing changed since the last run: nothing may be written.</summary>
    public Task<PgMeasurement> NoChangeAsync(string label, PgTableChecksum source, CancellationToken cancellationToken) =>
        RunAsync(label, PgCaseKind.NoChange, s => s.Written == 0, "wrote 0", source, cancellationToken);

    /// <summary><paramref name="changed"/> rows were updated at the source: exactly those are written.</summary>
    public Task<PgMeasurement> ChangedAsync(string label, int changed, PgTableChecksum source, CancellationToken cancellationToken) =>
        RunAsync(label, PgCaseKind.Changed, s => s.Updated == changed && s.Inserted == 0 && s.Deleted == 0, $"updated {changed:N0}", source, cancellationToken);

    private async Task<PgMeasurement> RunAsync(
        string label, PgCaseKind kind, Func<ReportStatistics, bool> expected, string expectation, PgTableChecksum source, CancellationToken cancellationToken)
    {
        var destination = _destination ?? throw new InvalidOperationException("an initial load names the destination first");
        Environment.SetEnvironmentVariable(SourceVariable, _source.Uri);
        Environment.SetEnvironmentVariable(DestinationVariable, destination.Uri);
        var report = Path.Combine(_folder, $"{Method}-{++_runs}.json");
        File.Delete(report);
        var process = await ProcessMeasurement.RunAsync(
            _cli.Program,
            _cli.Arguments("run", "--config", _configPath, "--report", report, "-v"),
            _folder).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.ChangeExtension(report, ".log"), process.Output, cancellationToken).ConfigureAwait(false);
        var statistics = File.Exists(report) ? ReportStatistics.Read(report) : null;
        var stages = StageTimings.Parse(process.Output);
        Console.WriteLine($"# {label}: exit {process.ExitCode} after {process.Elapsed.TotalSeconds:0.000} s, peak RSS {process.PeakRssBytes / 1048576.0:0} MB; report: {statistics?.ToString() ?? "none"}");
        if (stages is not null)
        {
            Console.WriteLine($"#   stages: {stages}");
        }

        string check;
        if (process.ExitCode != 0 || statistics is null)
        {
            check = $"FAIL: exit code {process.ExitCode}{(statistics is null ? ", no report" : "")}";
            Console.WriteLine(process.Output);
        }
        else if (!expected(statistics))
        {
            check = $"FAIL: expected {expectation}; {statistics}";
        }
        else
        {
            var copy = await PgTableChecksum.ComputeAsync(destination, cancellationToken).ConfigureAwait(false);
            check = PgTableChecksum.Compare(source, copy) + $", {expectation}";
        }

        Console.WriteLine($"#   check: {check}");
        return new PgMeasurement(label, kind, statistics?.Written ?? 0, process.Elapsed, process.PeakRssBytes, statistics?.EngineSeconds, stages, check);
    }

    /// <summary>The run's configuration, <c>METHOD.yaml</c>; its state goes to <c>METHOD.state.db</c> beside it (the default).</summary>
    private static string WriteConfig(string folder, string method)
    {
        var path = Path.Combine(folder, method + ".yaml");
        var cdc = method == "timestamp"
            ? """
              cdc:
                timestamp: {updated_at_field: updated_at, tolerance_window: "5 minutes"}
              """
            : "";
        File.WriteAllText(path, $$"""
            sync:
              source: {connection: "${{{SourceVariable}}}", tables: [{{PgItemsTable.Table}}]}
              destination: {connection: "${{{DestinationVariable}}}"}
              cdc_method: {{method}}
              batch_size: {{DeltaSyncCli.BatchSize}}
            {{cdc}}

            """);
        return path;
    }
}
