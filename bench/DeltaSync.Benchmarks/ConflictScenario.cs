using System.Globalization;
using System.Text.Json;

namespace DeltaSync.Benchmarks;

/// <summary>
/// <c>--conflicts</c>: what conflict detection costs. The same <c>--rows</c>-row table (default 100,000) is synced
/// twice: by one source (the single-source fast path, no record bases), and by two sources <c>a</c> and <c>b</c> that
/// start from the same rows (conflict path: record bases read, merged and written in every batch). Then every row is
/// changed at the single source and at <c>a</c> (new name, <c>updated_at</c> now), and 10% of them also at <c>b</c>
/// (a different name): those are update conflicts, resolved by last-write-wins. The two incremental runs are timed
/// (engine time from the report, and the whole process); the overhead is their ratio, and the pass/fail check uses it.
/// For reference it also times what a user without conflict detection would run for the same two sources: two
/// single-source syncs into one table, side by side.
/// </summary>
public static class ConflictScenario
{
    /// <summary>The acceptance bound: conflict detection adds at most this share to the incremental run.</summary>
    public const double MaxOverheadPercent = 25;

    private static readonly string[] PlainSources = ["a", "b"];

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
        File.Copy(single, Path.Combine(folder, "plain-a.db"));
        File.Copy(single, Path.Combine(folder, "plain-b.db"));
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
        // What a user without conflict detection runs: one sync per source into the same table, side by side (the
        // later write of a record simply wins). Each keeps its own state.
        var plainConfigs = PlainSources.Select(name => Write(folder, $"plain-{name}.yaml", $$"""
            sync:
              source: {name: {{name}}, connection: "sqlite:plain-{{name}}.db", tables: [items]}
              destination: {connection: "sqlite:plain-destination.db"}
              batch_size: 10000
            """)).ToList();
        foreach (var config in new[] { singleConfig, multiConfig, plainConfigs[0], plainConfigs[1] })
        {
            var (initial, stats) = await cli.RunAsync(config, Path.ChangeExtension(config, ".initial.json")).ConfigureAwait(false);
            Console.WriteLine($"# initial sync {Path.GetFileName(config)}: {initial.Elapsed.TotalSeconds:0.0}s, {stats}");
        }

        // Nothing changed since the initial run may fall inside the next run's tolerance window except the changes.
        foreach (var db in new[] { "single.db", "a.db", "b.db", "plain-a.db", "plain-b.db" })
        {
            ItemsDatabase.AgeRecentChanges(Path.Combine(folder, db));
        }

        Change(Path.Combine(folder, "single.db"), "a", "1 = 1");
        Change(Path.Combine(folder, "a.db"), "a", "1 = 1");
        Change(Path.Combine(folder, "b.db"), "b", "id % 10 = 0");
        Change(Path.Combine(folder, "plain-a.db"), "a", "1 = 1");
        Change(Path.Combine(folder, "plain-b.db"), "b", "id % 10 = 0");

        var (singleRun, singleStats) = await cli.RunAsync(singleConfig, Path.Combine(folder, "single.json")).ConfigureAwait(false);
        var multiReport = Path.Combine(folder, "multi.json");
        var (multiRun, multiStats) = await cli.RunAsync(multiConfig, multiReport).ConfigureAwait(false);
        var plainWatch = System.Diagnostics.Stopwatch.StartNew();
        var plain = await Task.WhenAll(plainConfigs.Select(c => cli.RunAsync(c, Path.ChangeExtension(c, ".json")))).ConfigureAwait(false);
        var plainElapsed = plainWatch.Elapsed;
        if (singleStats is null || multiStats is null || plain.Any(p => p.Statistics is null))
        {
            Console.Error.WriteLine($"a run failed:\n{singleRun.Output}\n{multiRun.Output}\n{string.Join("\n", plain.Select(p => p.Process.Output))}");
            return 1;
        }

        // The pair's figures: events and writes add up; engine time is the longer of the two (they ran side by side).
        var plainStats = new ReportStatistics(
            "completed",
            plain.Max(p => p.Statistics!.EngineSeconds),
            plain.Sum(p => p.Statistics!.Processed),
            plain.Sum(p => p.Statistics!.Inserted),
            plain.Sum(p => p.Statistics!.Updated),
            plain.Sum(p => p.Statistics!.Deleted),
            plain.Sum(p => p.Statistics!.Unchanged));

        long conflicts;
        using (var json = JsonDocument.Parse(await File.ReadAllTextAsync(multiReport).ConfigureAwait(false)))
        {
            conflicts = json.RootElement.GetProperty("statistics").GetProperty("conflicts_detected").GetInt64();
        }

        var engineOverhead = 100 * (multiStats.EngineSeconds / singleStats.EngineSeconds - 1);
        var processOverhead = 100 * (multiRun.Elapsed.TotalSeconds / singleRun.Elapsed.TotalSeconds - 1);
        var plainOverhead = 100 * (multiStats.EngineSeconds / plainStats.EngineSeconds - 1);
        Console.WriteLine();
        Console.WriteLine($"Machine: {MachineDescription.Describe()}; {DateTime.UtcNow:yyyy-MM-dd}; {MachineDescription.LoadAverage()} at the end");
        Console.WriteLine();
        Console.WriteLine("| case | changed rows (events) | conflicts | written | engine time | process time | peak RSS |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        Console.WriteLine(Line("one source, no conflict detection", singleStats, 0, singleRun));
        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"| two sources, no conflict detection (two single-source syncs side by side) | {plainStats.Processed:N0} | - | {plainStats.Written:N0} | {plainStats.EngineSeconds:0.00}s | {plainElapsed.TotalSeconds:0.00}s | {plain.Max(p => p.Process.PeakRssBytes) / 1048576.0:0} MB each |"));
        Console.WriteLine(Line("two sources, conflict detection (10% conflicting)", multiStats, conflicts, multiRun));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"overhead against one source: engine {engineOverhead:+0.0;-0.0}%, process {processOverhead:+0.0;-0.0}%; engine against two sources without detection: {plainOverhead:+0.0;-0.0}%"));
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
