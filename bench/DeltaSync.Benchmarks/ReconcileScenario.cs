using System.Globalization;
using System.Text.Json;

namespace DeltaSync.Benchmarks;

/// <summary>
/// <c>--reconcile</c>: a table of <c>--rows</c> rows synced SQLite → SQLite, then 10 rows drifted where a timestamp
/// cursor cannot see them (4 updates at the source keeping their <c>updated_at</c>, 3 hard deletes at the source,
/// 2 edits and 1 delete made at the destination), then <c>deltasync reconcile</c>. Prints the table's bytes, the bytes
/// the reconciliation fetched from both databases (digests, leaf rows, rows read in full), their ratio and the time.
/// </summary>
public static class ReconcileScenario
{
    /// <summary>The acceptance bound: a reconciliation transfers at most this share of the table's bytes.</summary>
    public const double MaxFetchedPercent = 5;

    public static async Task<int> RunAsync(DeltaSyncCli cli, BenchmarkOptions options)
    {
        ArgumentNullException.ThrowIfNull(cli);
        ArgumentNullException.ThrowIfNull(options);
        var folder = Path.Combine(options.WorkDirectory, "reconcile");
        Directory.CreateDirectory(folder);
        var source = Path.Combine(folder, "source.db");
        var destination = Path.Combine(folder, "destination.db");
        foreach (var file in Directory.GetFiles(folder))
        {
            File.Delete(file);
        }

        ItemsDatabase.Generate(source, options.Rows, DateTime.UtcNow, seed: 11);
        var config = DeltaSyncCli.WriteConfig(folder);
        var (initial, initialStats) = await cli.RunAsync(config, Path.Combine(folder, "initial.json")).ConfigureAwait(false);
        Console.WriteLine($"# initial sync: {initial.Elapsed.TotalSeconds:0.0}s, {initialStats}");

        var step = Math.Max(1, options.Rows / 11);
        var ids = Enumerable.Range(1, 10).Select(i => (long)i * step).ToArray();
        using (var connection = ItemsDatabase.Open(source))
        {
            foreach (var id in ids[..4])
            {
                ItemsDatabase.Execute(connection, $"UPDATE items SET name = 'drifted ' || id, price = price + 1 WHERE id = {id}");
            }

            ItemsDatabase.Execute(connection, $"DELETE FROM items WHERE id IN ({ids[4]}, {ids[5]}, {ids[6]})");
        }

        using (var connection = ItemsDatabase.Open(destination))
        {
            ItemsDatabase.Execute(connection, $"UPDATE items SET quantity = -1 WHERE id IN ({ids[7]}, {ids[8]})");
            ItemsDatabase.Execute(connection, $"DELETE FROM items WHERE id = {ids[9]}");
        }

        var tableBytes = TableBytes(source);
        var report = Path.Combine(folder, "reconcile.json");
        var measurement = await ProcessMeasurement.RunAsync(cli.Program, cli.Arguments("reconcile", "--config", config, "--report", report), folder).ConfigureAwait(false);
        if (measurement.ExitCode != 0 || !File.Exists(report))
        {
            Console.Error.WriteLine($"reconcile failed (exit {measurement.ExitCode}):\n{measurement.Output}");
            return 1;
        }

        using var json = JsonDocument.Parse(await File.ReadAllTextAsync(report).ConfigureAwait(false));
        var table = json.RootElement.GetProperty("tables")[0];
        var figures = table.GetProperty("reconciliation");
        long Figure(string name) => figures.GetProperty(name).GetInt64();
        var engineSeconds = json.RootElement.GetProperty("metadata").GetProperty("duration_seconds").GetDouble();
        var fetched = Figure("bytes_fetched");
        var percent = 100.0 * fetched / tableBytes;
        var synced = Checksum(source) == Checksum(destination);
        Console.WriteLine();
        Console.WriteLine($"Machine: {MachineDescription.Describe()}; {DateTime.UtcNow:yyyy-MM-dd}; {MachineDescription.LoadAverage()} at the end");
        Console.WriteLine();
        Console.WriteLine("| rows | drifted | table bytes | source file | ranges compared | ranges differing | rows fetched | bytes fetched | fetched / table | repaired (upsert / delete) | reconcile time (engine / process) | peak RSS | equal after |");
        Console.WriteLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"| {options.Rows:N0} | {ids.Length} | {tableBytes:N0} | {new FileInfo(source).Length:N0} | {Figure("ranges_compared"):N0} | {Figure("ranges_differing"):N0} | {Figure("rows_fetched"):N0} | {fetched:N0} | {percent:0.0000}% | {Figure("rows_upserted")} / {Figure("rows_deleted")} | {engineSeconds:0.00}s / {measurement.Elapsed.TotalSeconds:0.00}s | {measurement.PeakRssBytes / 1048576.0:0} MB | {(synced ? "yes" : "NO")} |"));
        var passed = synced && percent <= MaxFetchedPercent;
        Console.WriteLine(passed ? $"PASS: ≤ {MaxFetchedPercent}% of the table's bytes fetched, destination equal to the source" : "FAIL");
        return passed ? 0 : 1;
    }

    /// <summary>The table's payload as the reconciliation counts it: 8 bytes per number, text and blob lengths, 1 per NULL.</summary>
    private static long TableBytes(string path)
    {
        var sizes = string.Join(" + ", ItemsDatabase.Columns.Split(", ").Select(c =>
            $"CASE typeof({c}) WHEN 'integer' THEN 8 WHEN 'real' THEN 8 WHEN 'null' THEN 1 ELSE length(CAST({c} AS BLOB)) END"));
        using var connection = ItemsDatabase.Open(path);
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT sum({sizes}) FROM items";
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    private static string Checksum(string path)
    {
        using var connection = ItemsDatabase.Open(path);
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT count(*), sum(length({ItemsDatabase.Columns.Replace(", ", ") + length(", StringComparison.Ordinal)})), total(price), total(quantity) FROM items";
        using var reader = command.ExecuteReader();
        reader.Read();
        return string.Join("|", Enumerable.Range(0, reader.FieldCount).Select(i => Convert.ToString(reader.GetValue(i), CultureInfo.InvariantCulture)));
    }
}
