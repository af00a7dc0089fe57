using System.Globalization;
using System.Text.Json;

namespace DeltaSync.Benchmarks;

/// <summary>
/// <c>--conflicts</c>: what conflict detection costs. The same <c>--rows</c>-row table (default 100,000) is synced
/// twice: by one source (the single-source fast path, no record bases), and by two sources <c>a</c> and <c>b</c> that
/// start from the same rows (conflict path: record bases read, merged and written in every batch). Then every row is
/// changed at the single source and at <c>a</c> (new name, <c>updated_at</c> now), and 10% of them also at <c>b</c>
/// (a different name): those are update conflicts, resolved by last-write-wins. The two incremental runs are timed
/// (engine time from the report, and the whole process); the overhead is their ratio.
/// </summary>
public static class ConflictScenario
{
    /// <summary>The acceptance bound: conflict detection adds at most this share to the incremental run.</summary>
    public const double MaxOverheadPercent = 25;

    public static async Task<int> RunAsync(DeltaSyncCli cli, BenchmarkOptions options)
    {
        ArgumentNullException.ThrowIfNull(cli);
        ArgumentNullException.ThrowIfNull(options);
        var folder = Path.Combine(options.WorkDirectory, "conflicts");
        Directory.CreateDirectory(folder);
        foreach (var file in Directory.GetFiles(folder))
        {
            File.Delete(file);
        }

        var rows = options.Rows;
        var single = Path.Combine(folder, "single.db");
        ItemsDatabase.Generate(single, rows, DateTime.UtcNow, seed: 5);
        File.Copy(single, Path.Combine(folder, "a.db"));
        File.Copy(single, Path.Combine(folder, "b.db"));
        var singleConfig = Write(folder, "single.yaml", """
            sync:
              source: {name: a, connection: "sqlite:single.db", tables: [items]}
              destination: {connection: "sqlite:single-destination.db"}
              batch_size: 10000
            """);
        var multiConfig = Write(folder, "multi.yaml", """
            sync:
              sources:
                - {name: a, connection: "sqlite:a.db", tables: [items]}
                - {name: b, connection: "sqlite:b.db", tables: [items]}
              destination: {connection: "sqlite:multi-destination.db"}
              batch_size: 10000
            conflict_resolution: {default_strategy: last_write_wins}
            """);
        foreach (var config in new[] { singleConfig, multiConfig })
        {
            var (initial, stats) = await cli.RunAsync(config, Path.ChangeExtension(config, ".initial.json")).ConfigureAwait(false);
            Console.WriteLine($"# initial sync {Path.GetFileName(config)}: {initial.Elapsed.TotalSeconds:0.0}s, {stats}");
        }

        // Nothing changed since the initial run may fall inside the next run's tolerance window except the changes.
        foreach (var db in new[] { "single.db", "a.db", "b.db" })
        {
            ItemsDatabase.AgeRecentChanges(Path.Combine(folder, db));
        }

        Change(Path.Combine(folder, "single.db"), "a", "1 = 1");
        Change(Path.Combine(folder, "a.db"), "a", "1 = 1");
        Change(Path.Combine(folder, "b.db"), "b", "id % 10 = 0");

        var (singleRun, singleStats) = await cli.RunAsync(singleConfig, Path.Combine(folder, "single.json")).ConfigureAwait(false);
        var multiReport = Path.Combine(folder, "multi.json");
        var (multiRun, multiStats) = await cli.RunAsync(multiConfig, multiReport).ConfigureAwait(false);
        if (singleStats is null || multiStats is null)
        {
            Console.Error.WriteLine($"a run failed:\n{singleRun.Output}\n{multiRun.Output}");
            return 1;
        }

        long conflicts;
        using (var json = JsonDocument.Parse(await File.ReadAllTextAsync(multiReport).ConfigureAwait(false)))
        {
            conflicts = json.RootElement.GetProperty("statistics").GetProperty("conflicts_detected").GetInt64();
        }

        var engineOverhead = 100 * (multiStats.EngineSeconds / singleStats.EngineSeconds - 1);
        var processOverhead = 100 * (multiRun.Elapsed.TotalSeconds / singleRun.Elapsed.TotalSeconds - 1);
        Console.WriteLine();
        Console.WriteLine($"Machine: {MachineDescription.Describe()}; {DateTime.UtcNow:yyyy-MM-dd}; {MachineDescription.LoadAverage()} at the end");
        Console.WriteLine();
        Console.WriteLine("| case | changed rows (events) | conflicts | written | engine time | process time | peak RSS |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        Console.WriteLine(Line("one source, no conflict detection", singleStats, 0, singleRun));
        Console.WriteLine(Line("two sources, conflict detection (10% conflicting)", multiStats, conflicts, multiRun));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"overhead: engine {engineOverhead:+0.0;-0.0}%, process {processOverhead:+0.0;-0.0}%"));
        var passed = conflicts == rows / 10 && engineOverhead <= MaxOverheadPercent;
        Console.WriteLine(passed ? $"PASS: conflicts detected for exactly 10% of rows, overhead ≤ {MaxOverheadPercent}%" : "FAIL");
        return passed ? 0 : 1;
    }

    private static string Line(string name, ReportStatistics stats, long conflicts, ProcessMeasurement run) => string.Create(
        CultureInfo.InvariantCulture,
        $"| {name} | {stats.Processed:N0} | {conflicts:N0} | {stats.Written:N0} | {stats.EngineSeconds:0.00}s | {run.Elapsed.TotalSeconds:0.00}s | {run.PeakRssBytes / 1048576.0:0} MB |");

    private static void Change(string path, string marker, string where)
    {
        using var connection = ItemsDatabase.Open(path);
        ItemsDatabase.Execute(connection, $"UPDATE items SET name = name || ' ({marker})', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE {where}");
    }

    private static string Write(string folder, string name, string yaml)
    {
        var path = Path.Combine(folder, name);
        File.WriteAllText(path, yaml + "\n");
        return path;
    }
}
