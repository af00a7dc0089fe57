using System.Diagnostics;

namespace DeltaSync.Benchmarks;

/// <summary>
/// One table size in its own folder: generate the source, then run the CLI and check after every run that the
/// destination equals the source and that the report counts exactly the rows that had to be written.
/// </summary>
public sealed class SyncScenario
{
    private const int Seed = 20_240_601;

    private readonly DeltaSyncCli _cli;
    private readonly string _folder;
    private readonly string _configPath;
    private int _runs;

    private SyncScenario(DeltaSyncCli cli, string folder, int rows)
    {
        _cli = cli;
        _folder = folder;
        Rows = rows;
        _configPath = DeltaSyncCli.WriteConfig(folder);
    }

    public int Rows { get; }

    public string SourcePath => Path.Combine(_folder, "source.db");

    private string DestinationPath => Path.Combine(_folder, "destination.db");

    /// <summary>A fresh folder <c>WORK/ROWS</c> with a generated source and its configuration.</summary>
    public static SyncScenario Create(DeltaSyncCli cli, string workDirectory, int rows)
    {
        ArgumentNullException.ThrowIfNull(cli);
        var folder = Path.Combine(workDirectory, rows.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (Directory.Exists(folder))
        {
            Directory.Delete(folder, recursive: true);
        }

        Directory.CreateDirectory(folder);
        var scenario = new SyncScenario(cli, folder, rows);
        var watch = Stopwatch.StartNew();
        ItemsDatabase.Generate(scenario.SourcePath, rows, DateTime.UtcNow, Seed);
        Console.WriteLine($"# generated {rows:N0} rows in {watch.Elapsed.TotalSeconds:0.0} s ({new FileInfo(scenario.SourcePath).Length / 1024 / 1024} MB): {scenario.SourcePath}");
        return scenario;
    }

    /// <summary>Baseline: SQLite's own copy into a fresh file.</summary>
    public BenchmarkResult AttachBaseline(string label) =>
        Baseline(label, "baseline-attach.db", CopyBaselines.AttachInsertSelect);

    /// <summary>Baseline: the hand-written ADO.NET copy loop into a fresh file.</summary>
    public BenchmarkResult AdoNetBaseline(string label) =>
        Baseline(label, "baseline-adonet.db", CopyBaselines.AdoNetLoop);

    /// <summary>(a) A run against an empty destination and no state: every row is new.</summary>
    public Task<BenchmarkResult> FullSyncAsync(string label)
    {
        ItemsDatabase.AgeRecentChanges(SourcePath);
        ItemsDatabase.DeleteDatabase(DestinationPath);
        ItemsDatabase.DeleteDatabase(Path.Combine(_folder, "deltasync.state.db"));
        return RunAsync(label, s => s.Inserted == Rows && s.Updated == 0 && s.Deleted == 0, $"inserted {Rows:N0}");
    }

    /// <summary>(b) Changes <paramref name="count"/> rows at the source (a different set each round), then syncs them.</summary>
    public Task<BenchmarkResult> IncrementalSyncAsync(string label, int count, int round)
    {
        var changed = ItemsDatabase.ChangeRows(SourcePath, Rows, count, Seed + 1 + round).Count;
        return RunAsync(label, s => s.Updated == changed && s.Inserted == 0 && s.Deleted == 0, $"updated {changed:N0}");
    }

    /// <summary>(c) Nothing changed since the last run: nothing may be written.</summary>
    public Task<BenchmarkResult> NoChangeSyncAsync(string label) =>
        RunAsync(label, s => s.Written == 0, "wrote 0");

    private BenchmarkResult Baseline(string label, string fileName, Func<string, string, TimeSpan> copy)
    {
        var path = Path.Combine(_folder, fileName);
        var elapsed = copy(SourcePath, path);
        var check = Compare(TableChecksum.Compute(SourcePath), TableChecksum.Compute(path));
        ItemsDatabase.DeleteDatabase(path);
        Console.WriteLine($"# {label}: {elapsed.TotalSeconds:0.000} s; check: {check}");
        return new BenchmarkResult(label, Rows, Rows, elapsed, null, null, check);
    }

    private async Task<BenchmarkResult> RunAsync(string label, Func<ReportStatistics, bool> expected, string expectation)
    {
        var report = Path.Combine(_folder, $"report-{++_runs}.json");
        var (process, statistics) = await _cli.RunAsync(_configPath, report).ConfigureAwait(false);
        Console.WriteLine($"# {label}: exit {process.ExitCode} after {process.Elapsed.TotalSeconds:0.000} s, peak RSS {process.PeakRssBytes / 1048576.0:0} MB; report: {statistics?.ToString() ?? "none"}");
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
            check = Compare(TableChecksum.Compute(SourcePath), TableChecksum.Compute(DestinationPath)) + $", {expectation}";
        }

        Console.WriteLine($"#   check: {check}");
        return new BenchmarkResult(label, Rows, statistics?.Written ?? 0, process.Elapsed, process.PeakRssBytes, statistics?.EngineSeconds, check);
    }

    private static string Compare(TableChecksum source, TableChecksum copy) =>
        source == copy ? "ok: tables equal" : $"FAIL: source {source} ≠ copy {copy}";
}
