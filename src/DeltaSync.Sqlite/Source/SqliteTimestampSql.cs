namespace DeltaSync.Sqlite.Source;

/// <summary>
/// The SQL that turns a cursor column into one comparable integer, whatever format each row stores it in:
/// epoch seconds or milliseconds (numbers or numeric text) and date-time text (SQLite's date functions read
/// ISO-8601 with 'T' or space, fractional seconds, and Z / ±HH:MM offsets). Zone-less text is read as if UTC;
/// <see cref="SqliteSource"/> moves clock bounds into that frame for non-UTC sources.
/// The result is NULL for NULL and for text SQLite cannot read; those rows are handled apart.
/// </summary>
internal static class SqliteTimestampSql
{
    public static string EpochMilliseconds(string quotedColumn) =>
        $"""
        (CASE
          WHEN {quotedColumn} IS NULL THEN NULL
          WHEN typeof({quotedColumn}) IN ('integer', 'real') THEN CAST(CASE WHEN abs({quotedColumn}) >= 100000000000 THEN {quotedColumn} ELSE {quotedColumn} * 1000 END AS INTEGER)
          WHEN typeof({quotedColumn}) = 'text' AND {quotedColumn} GLOB '[0-9]*' AND {quotedColumn} NOT GLOB '*[^0-9.]*' THEN CAST(CASE WHEN abs(CAST({quotedColumn} AS REAL)) >= 100000000000 THEN CAST({quotedColumn} AS REAL) ELSE CAST({quotedColumn} AS REAL) * 1000 END AS INTEGER)
          WHEN typeof({quotedColumn}) = 'text' THEN CAST(round(unixepoch({quotedColumn}, 'subsec') * 1000) AS INTEGER)
          ELSE NULL
        END)
        """;

    /// <summary>A sequence column as an integer; NULL for NULL and for values that are not whole numbers.</summary>
    public static string Sequence(string quotedColumn) =>
        $"(CASE WHEN typeof({quotedColumn}) = 'integer' THEN {quotedColumn} WHEN typeof({quotedColumn}) IN ('real', 'text') AND CAST({quotedColumn} AS INTEGER) = {quotedColumn} THEN CAST({quotedColumn} AS INTEGER) ELSE NULL END)";
}
