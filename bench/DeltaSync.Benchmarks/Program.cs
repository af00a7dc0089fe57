using System.Globalization;
using DeltaSync.Benchmarks;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
var root = RepositoryRoot();
BenchmarkOptions options;
try
{
    options = BenchmarkOptions.Parse(args, root);
}
catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

Console.WriteLine($"# {MachineDescription.Describe()}; {MachineDescription.LoadAverage()} at start");
DeltaSyncCli cli;
try
{
    cli = options.CliPath is null ? await DeltaSyncCli.BuildAsync(root, options.Jit) : DeltaSyncCli.At(options.CliPath);
}
catch (InvalidOperationException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

Console.WriteLine($"# CLI: {cli.Description}; batch_size {DeltaSyncCli.BatchSize:N0}; work folder {options.WorkDirectory}");
Directory.CreateDirectory(options.WorkDirectory);
await cli.WarmUpAsync(options.WorkDirectory);
if (options.Conflicts)
{
    return await ConflictScenario.RunAsync(cli, options);
}

if (options.Reconcile)
{
    return await ReconcileScenario.RunAsync(cli, options);
}

if (options.PostgresUri is not null)
{
    return await DeltaSync.Benchmarks.Postgres.PostgresBenchmark.RunAsync(cli, options);
}

var scenario = SyncScenario.Create(cli, options.WorkDirectory, options.Rows);
var rounds = new List<BenchmarkResult[]>();
for (var round = 0; round < options.Rounds; round++)
{
    Console.WriteLine($"# round {round + 1} of {options.Rounds}");
    rounds.Add(
    [
        scenario.AttachBaseline("Baseline: SQLite ATTACH + INSERT…SELECT"),
        scenario.AdoNetBaseline("Baseline: ADO.NET read → prepared INSERT"),
        await scenario.FullSyncAsync("(a) DeltaSync full sync, empty destination"),
        await scenario.IncrementalSyncAsync($"(b) DeltaSync incremental, {options.ChangedPercent:0.##}% changed", options.ChangedRows, round),
        await scenario.NoChangeSyncAsync("(c) DeltaSync incremental, no change"),
    ]);
}

var results = Enumerable.Range(0, rounds[0].Length).Select(c => BenchmarkResult.Summarize(rounds.Select(r => r[c]).ToList())).ToList();
if (options.ScaleCheck)
{
    var large = SyncScenario.Create(cli, options.WorkDirectory, options.Rows * BenchmarkOptions.ScaleFactor);
    var full = await large.FullSyncAsync($"(a×{BenchmarkOptions.ScaleFactor}) DeltaSync full sync, empty destination");
    results.Add(full);
    var small = results.First(r => r.Case.StartsWith("(a)", StringComparison.Ordinal));
    Console.WriteLine(
        $"# scale check: peak RSS {small.PeakRssBytes / 1048576.0:0} MB at {small.TableRows:N0} rows, {full.PeakRssBytes / 1048576.0:0} MB at {full.TableRows:N0} rows " +
        $"(×{(double)full.PeakRssBytes!.Value / small.PeakRssBytes!.Value:0.00} for ×{BenchmarkOptions.ScaleFactor} rows)");
}

Console.WriteLine();
Console.WriteLine($"Median of {options.Rounds} round(s); peak RSS is the largest seen; batch_size {DeltaSyncCli.BatchSize:N0}.");
Console.WriteLine($"Machine: {MachineDescription.Describe()}; {DateTime.UtcNow:yyyy-MM-dd}; {MachineDescription.LoadAverage()} at the end");
Console.WriteLine();
Console.Write(ResultTable.ToMarkdown(results));
return results.All(r => r.Passed) ? 0 : 1;

static string RepositoryRoot()
{
    for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
    {
        if (File.Exists(Path.Combine(folder.FullName, "DeltaSync.sln")))
        {
            return folder.FullName;
        }
    }

    return Directory.GetCurrentDirectory();
}
