using System.Data.Common;
using System.Globalization;

namespace DeltaSync.FaultInjection.Tests.Infrastructure;

/// <summary>
/// Rows read as canonical text, one string per value with its kind (<c>i:</c> integer, <c>r:</c> real, <c>t:</c> text,
/// <c>b:</c> bytes, <c>ts:</c> instant), so two tables compare equal exactly when they hold the same values of the
/// same kinds. Across systems (PostgreSQL → SQLite) instants stored as ISO-8601 text and booleans stored as 0/1 are
/// the portable forms of the same values, so they are read as instants and integers on both sides.
/// </summary>
internal static class CanonicalRows
{
    public static async Task<List<string[]>> ReadAsync(DbConnection connection, string sql, bool crossSystem)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.CommandTimeout = 120;
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string[]>();
        while (await reader.ReadAsync())
        {
            var row = new string[reader.FieldCount];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = Value(reader.IsDBNull(i) ? null : reader.GetValue(i), crossSystem);
            }

            rows.Add(row);
        }

        return rows;
    }

    public static string Value(object? value, bool crossSystem) => value switch
    {
        null or DBNull => "NULL",
        bool b => b ? "i:1" : "i:0",
        long or int or short or byte => "i:" + Convert.ToString(value, CultureInfo.InvariantCulture),
        double d => "r:" + d.ToString("R", CultureInfo.InvariantCulture),
        float f => "r:" + ((double)f).ToString("R", CultureInfo.InvariantCulture),
        decimal m => "n:" + m.ToString(CultureInfo.InvariantCulture),
        DateTime t => "ts:" + Instant(t.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(t, DateTimeKind.Utc) : t.ToUniversalTime()),
        DateTimeOffset o => "ts:" + Instant(o.UtcDateTime),
        string s when crossSystem && LooksLikeInstant(s, out var instant) => "ts:" + Instant(instant),
        string s => "t:" + s,
        byte[] bytes => "b:" + Convert.ToHexStringLower(bytes),
        _ => "?:" + Convert.ToString(value, CultureInfo.InvariantCulture),
    };

    private static string Instant(DateTime utc) => utc.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    private static bool LooksLikeInstant(string text, out DateTime utc)
    {
        utc = default;
        if (text.Length < 20 || text[4] != '-' || text[10] != 'T' || !text.EndsWith('Z'))
        {
            return false;
        }

        if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed))
        {
            return false;
        }

        utc = parsed.UtcDateTime;
        return true;
    }
}

/// <summary>Compares a destination table with its source: by key for keyed tables, as a multiset for keyless ones.</summary>
internal static class RowComparison
{
    /// <summary>
    /// Null when both hold the same keys with the same values; otherwise what differs: keys lost (in the source only),
    /// extra keys (destination only), keys present twice at the destination, and rows whose values differ.
    /// </summary>
    /// <param name="keyColumns">How many leading columns form the key.</param>
    public static string? ByKey(IReadOnlyList<string[]> source, IReadOnlyList<string[]> destination, int keyColumns, string table)
    {
        static string KeyOf(string[] row, int n) => string.Join(",", row.Take(n));
        var expected = new Dictionary<string, string[]>(StringComparer.Ordinal);
        foreach (var row in source)
        {
            expected[KeyOf(row, keyColumns)] = row;
        }

        var actual = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var duplicated = new List<string>();
        foreach (var row in destination)
        {
            if (!actual.TryAdd(KeyOf(row, keyColumns), row))
            {
                duplicated.Add(KeyOf(row, keyColumns));
            }
        }

        var lost = expected.Keys.Where(k => !actual.ContainsKey(k)).ToList();
        var extra = actual.Keys.Where(k => !expected.ContainsKey(k)).ToList();
        var differing = expected.Where(e => actual.TryGetValue(e.Key, out var a) && !a.SequenceEqual(e.Value)).Select(e => e.Key).ToList();
        if (lost.Count + extra.Count + duplicated.Count + differing.Count == 0)
        {
            return null;
        }

        var lines = new List<string>
        {
            $"'{table}': source {source.Count} rows, destination {destination.Count}; lost {lost.Count}, extra {extra.Count}, duplicated {duplicated.Count}, different {differing.Count}",
        };
        lines.AddRange(lost.Take(5).Select(k => $"  lost key {k}: {string.Join(" | ", expected[k])}"));
        lines.AddRange(extra.Take(5).Select(k => $"  extra key {k}: {string.Join(" | ", actual[k])}"));
        lines.AddRange(duplicated.Take(5).Select(k => $"  duplicated key {k}"));
        foreach (var k in differing.Take(5))
        {
            lines.Add($"  key {k} source:      {string.Join(" | ", expected[k])}");
            lines.Add($"  key {k} destination: {string.Join(" | ", actual[k])}");
        }

        return string.Join('\n', lines);
    }

    /// <summary>Null when both hold the same rows the same number of times (a keyless table); otherwise the rows lost and doubled.</summary>
    public static string? AsMultiset(IReadOnlyList<string[]> source, IReadOnlyList<string[]> destination, string table)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var row in source)
        {
            var line = string.Join(" | ", row);
            counts[line] = counts.GetValueOrDefault(line) + 1;
        }

        foreach (var row in destination)
        {
            var line = string.Join(" | ", row);
            counts[line] = counts.GetValueOrDefault(line) - 1;
        }

        var lost = counts.Where(c => c.Value > 0).ToList();
        var doubled = counts.Where(c => c.Value < 0).ToList();
        if (source.Count == destination.Count && lost.Count == 0 && doubled.Count == 0)
        {
            return null;
        }

        var lines = new List<string>
        {
            $"'{table}' (keyless): source {source.Count} rows, destination {destination.Count}; {lost.Sum(c => c.Value)} row(s) lost, {-doubled.Sum(c => c.Value)} extra or doubled",
        };
        lines.AddRange(lost.Take(5).Select(c => $"  lost ×{c.Value}: {c.Key}"));
        lines.AddRange(doubled.Take(5).Select(c => $"  extra ×{-c.Value}: {c.Key}"));
        return string.Join('\n', lines);
    }
}
