using System.Globalization;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Sqlite.Source;

/// <summary>
/// An index-friendly superset of the rows a cursor pass must read. The exact test is on the normalized cursor value,
/// which no index can serve; when the cursor column has an index and its smallest and largest values (read from the
/// index) show one storage shape — all ISO-8601 text, all epoch seconds, all epoch milliseconds, or all whole numbers for
/// a sequence — a range on the raw column keeps every candidate and lets SQLite skip the rest of the table.
/// Anything else (no index, mixed shapes) gets no prefilter: a full scan, always correct.
/// </summary>
internal static class SqliteCursorRange
{
    /// <summary>The raw lower bound for <c>column &gt;= bound</c> (NULLs are always read), or null for a full scan.</summary>
    public static object? LowerBound(SqliteConnection connection, string table, string column, bool isTimestamp, long start)
    {
        if (!HasLeadingIndex(connection, table, column))
        {
            return null;
        }

        // One aggregate per subquery: SQLite answers a lone min() or max() from the index's ends, while several aggregates
        // in one SELECT scan the whole table.
        object? min, max;
        using (var command = connection.CreateCommand())
        {
            var quoted = SqliteSql.Quote(column);
            var from = SqliteSql.Quote(table);
            command.CommandText = $"SELECT (SELECT min({quoted}) FROM {from}), (SELECT max({quoted}) FROM {from})";
            using var reader = command.ExecuteReader();
            if (!reader.Read() || reader.IsDBNull(0))
            {
                return null;
            }

            min = reader.GetValue(0);
            max = reader.GetValue(1);
        }

        if (!isTimestamp)
        {
            return min is long && max is long ? start : null;
        }

        if (min is string first && max is string last && IsIsoDate(first) && IsIsoDate(last))
        {
            // A day of slack covers any UTC offset written in the text.
            return DateTimeOffset.FromUnixTimeMilliseconds(Math.Max(start, -62_135_596_800_000 + 86_400_000) - 86_400_000)
                .UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        }

        if (min is long or double && max is long or double)
        {
            var low = Convert.ToDouble(min, CultureInfo.InvariantCulture);
            var high = Convert.ToDouble(max, CultureInfo.InvariantCulture);
            if (high < Core.Time.SourceTimestamp.EpochMillisecondsThreshold)
            {
                return Math.Floor(start / 1000.0) - 1;
            }

            if (low >= Core.Time.SourceTimestamp.EpochMillisecondsThreshold)
            {
                return start - 1;
            }
        }

        return null;
    }

    /// <summary>Text that starts like <c>YYYY-MM-DD</c>.</summary>
    private static bool IsIsoDate(string text) =>
        text.Length >= 10 && text[4] == '-' && text[7] == '-'
        && char.IsAsciiDigit(text[0]) && char.IsAsciiDigit(text[1]) && char.IsAsciiDigit(text[2]) && char.IsAsciiDigit(text[3])
        && char.IsAsciiDigit(text[5]) && char.IsAsciiDigit(text[6]) && char.IsAsciiDigit(text[8]) && char.IsAsciiDigit(text[9]);

    private static bool HasLeadingIndex(SqliteConnection connection, string table, string column)
    {
        using var command = connection.CreateCommand();
        command.CommandText =
            "SELECT 1 FROM pragma_index_list($table) AS il JOIN pragma_index_info(il.name) AS ii " +
            "WHERE ii.seqno = 0 AND ii.name = $column COLLATE NOCASE LIMIT 1";
        command.Parameters.AddWithValue("$table", table);
        command.Parameters.AddWithValue("$column", column);
        return command.ExecuteScalar() is not null;
    }
}
