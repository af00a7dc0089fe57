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
    private const string IsoDate = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*";

    /// <summary>The raw lower bound for <c>column &gt;= bound</c> (NULLs are always read), or null for a full scan.</summary>
    public static object? LowerBound(SqliteConnection connection, string table, string column, bool isTimestamp, long start)
    {
        if (!HasLeadingIndex(connection, table, column))
        {
            return null;
        }

        using var command = connection.CreateCommand();
        var quoted = SqliteSql.Quote(column);
        command.CommandText =
            $"SELECT typeof(min({quoted})), typeof(max({quoted})), min({quoted}) GLOB $iso, max({quoted}) GLOB $iso, min({quoted}), max({quoted}) FROM {SqliteSql.Quote(table)}";
        command.Parameters.AddWithValue("$iso", IsoDate);
        using var reader = command.ExecuteReader();
        if (!reader.Read() || reader.IsDBNull(0))
        {
            return null;
        }

        var minType = reader.GetString(0);
        var maxType = reader.GetString(1);
        if (!isTimestamp)
        {
            return minType == "integer" && maxType == "integer" ? start : null;
        }

        if (minType == "text" && maxType == "text" && reader.GetInt64(2) == 1 && reader.GetInt64(3) == 1)
        {
            // A day of slack covers any UTC offset written in the text.
            return DateTimeOffset.FromUnixTimeMilliseconds(Math.Max(start, -62_135_596_800_000 + 86_400_000) - 86_400_000)
                .UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        }

        if (minType is "integer" or "real" && maxType is "integer" or "real")
        {
            var min = reader.GetDouble(4);
            var max = reader.GetDouble(5);
            if (max < Core.Time.SourceTimestamp.EpochMillisecondsThreshold)
            {
                return Math.Floor(start / 1000.0) - 1;
            }

            if (min >= Core.Time.SourceTimestamp.EpochMillisecondsThreshold)
            {
                return start - 1;
            }
        }

        return null;
    }

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
