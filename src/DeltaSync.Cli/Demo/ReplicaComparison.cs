using System.Globalization;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Cli.Demo;

/// <summary>How one destination table compares with its source table, row for row and value for value.</summary>
/// <param name="DeadLetteredMissing">Keys absent from the destination because they are in the dead-letter queue (expected).</param>
/// <param name="Differences">Everything else that differs, one line each; empty when the tables match.</param>
internal sealed record TableComparison(string Table, int SourceRows, int DestinationRows, IReadOnlyList<string> DeadLetteredMissing, IReadOnlyList<string> Differences)
{
    public bool Matches => Differences.Count == 0;
}

/// <summary>
/// Compares <c>SELECT *</c> of a table in two SQLite databases by key. Values must be equal including their storage
/// class (an INTEGER 5 is not a REAL 5.0), because the destination is meant to be a faithful copy.
/// </summary>
internal static class ReplicaComparison
{
    public static TableComparison Compare(string sourcePath, string destinationPath, ShopTable table, IReadOnlySet<string> deadLettered)
    {
        var (sourceColumns, source) = ReadAll(sourcePath, table);
        var (destinationColumns, destination) = ReadAll(destinationPath, table);
        var differences = new List<string>();
        var missing = new List<string>();
        var columnPairs = new List<(string Name, int Source, int Destination)>();
        for (var i = 0; i < sourceColumns.Count; i++)
        {
            var at = destinationColumns.FindIndex(c => string.Equals(c, sourceColumns[i], StringComparison.OrdinalIgnoreCase));
            if (at < 0)
            {
                differences.Add($"column {sourceColumns[i]} is missing from the destination");
            }
            else
            {
                columnPairs.Add((sourceColumns[i], i, at));
            }
        }

        foreach (var (key, row) in source)
        {
            if (!destination.TryGetValue(key, out var copy))
            {
                if (deadLettered.Contains(key))
                {
                    missing.Add(key);
                }
                else
                {
                    differences.Add($"{table.Key} {key}: missing from the destination");
                }

                continue;
            }

            foreach (var (name, s, d) in columnPairs)
            {
                if (!SameValue(row[s], copy[d]))
                {
                    differences.Add($"{table.Key} {key}: {name} is {Show(row[s])} in the source but {Show(copy[d])} in the destination");
                }
            }
        }

        differences.AddRange(destination.Keys.Where(k => !source.ContainsKey(k)).Select(k => $"{table.Key} {k}: in the destination but not in the source"));
        return new TableComparison(table.Name, source.Count, destination.Count, missing, differences);
    }

    private static (List<string> Columns, Dictionary<string, object?[]> Rows) ReadAll(string path, ShopTable table)
    {
        using var connection = DemoShop.Open(path);
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT * FROM \"{table.Name}\" ORDER BY \"{table.Key}\"";
        using var reader = command.ExecuteReader();
        var columns = Enumerable.Range(0, reader.FieldCount).Select(reader.GetName).ToList();
        var keyIndex = columns.FindIndex(c => string.Equals(c, table.Key, StringComparison.OrdinalIgnoreCase));
        var rows = new Dictionary<string, object?[]>(StringComparer.Ordinal);
        while (reader.Read())
        {
            var row = new object?[reader.FieldCount];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            }

            rows[KeyText(row[keyIndex])] = row;
        }

        return (columns, rows);
    }

    /// <summary>A key as the engine's reports and dead-letter queue write it.</summary>
    public static string KeyText(object? value) => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "NULL";

    private static bool SameValue(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (byte[] x, byte[] y) => x.AsSpan().SequenceEqual(y),
        (null, _) or (_, null) => false,
        _ => a.GetType() == b.GetType() && a.Equals(b),
    };

    private static string Show(object? value) => value switch
    {
        null => "NULL",
        string s => $"'{s}'",
        double d => d.ToString("R", CultureInfo.InvariantCulture) + " (REAL)",
        long l => l.ToString(CultureInfo.InvariantCulture) + " (INTEGER)",
        byte[] b => "x'" + Convert.ToHexString(b) + "'",
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };
}
