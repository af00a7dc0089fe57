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
          WHEN typeof({quotedColumn}) = 'text' AND substr({quotedColumn}, 5, 1) = '-' THEN {DateText(quotedColumn)}
          WHEN typeof({quotedColumn}) IN ('integer', 'real') THEN CAST(CASE WHEN abs({quotedColumn}) >= 100000000000 THEN {quotedColumn} ELSE {quotedColumn} * 1000 END AS INTEGER)
          WHEN typeof({quotedColumn}) = 'text' AND {quotedColumn} GLOB '[0-9]*' AND {quotedColumn} NOT GLOB '*[^0-9.]*' THEN CAST(CASE WHEN abs(CAST({quotedColumn} AS REAL)) >= 100000000000 THEN CAST({quotedColumn} AS REAL) ELSE CAST({quotedColumn} AS REAL) * 1000 END AS INTEGER)
          WHEN typeof({quotedColumn}) = 'text' THEN {DateText(quotedColumn)}
          ELSE NULL
        END)
        """;

    /// <summary>
    /// Date-time text in epoch milliseconds. Text shaped like <c>YYYY-…</c> is taken here first: it cannot be the
    /// numeric text of the next branches (it holds a '-'), and skipping their two GLOBs halves the cost per row.
    /// </summary>
    private static string DateText(string quotedColumn) =>
        $"CAST(round(coalesce(unixepoch({quotedColumn}, 'subsec'), {LeapSecond(quotedColumn)}) * 1000) AS INTEGER)";

    /// <summary>
    /// A timestamp cursor that falls back to <paramref name="quotedCreatedAt"/> where <paramref name="quotedUpdatedAt"/> is
    /// NULL (never where it holds text SQLite cannot read: that row is dead-lettered, not re-dated).
    /// </summary>
    public static string EpochMillisecondsOrCreatedAt(string quotedUpdatedAt, string quotedCreatedAt) =>
        $"(CASE WHEN {quotedUpdatedAt} IS NULL THEN {EpochMilliseconds(quotedCreatedAt)} ELSE {EpochMilliseconds(quotedUpdatedAt)} END)";

    /// <summary>
    /// SQLite's date functions return NULL for a leap second (<c>…HH:MM:60[.f…][offset]</c>). Such text is read as
    /// <c>HH:MM:59.999</c> with the same offset — the last millisecond of the second before, as the C# parser reads it
    /// (to the nanosecond) — so it sorts after every other time of its minute and is not taken for unreadable text.
    /// Only evaluated when the plain reading failed, so ordinary rows pay nothing.
    /// </summary>
    private static string LeapSecond(string c) =>
        $"(CASE WHEN substr({c}, 17, 3) = ':60' AND substr({c}, 1, 16) GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][T ][0-9][0-9]:[0-9][0-9]' " +
        $"THEN unixepoch(substr({c}, 1, 17) || '59.999' || CASE WHEN substr({c}, 20, 1) = '.' THEN ltrim(substr({c}, 21), '0123456789') ELSE substr({c}, 20) END, 'subsec') END)";

    /// <summary>A sequence column as an integer; NULL for NULL and for values that are not whole numbers.</summary>
    public static string Sequence(string quotedColumn) =>
        $"(CASE WHEN typeof({quotedColumn}) = 'integer' THEN {quotedColumn} WHEN typeof({quotedColumn}) IN ('real', 'text') AND CAST({quotedColumn} AS INTEGER) = {quotedColumn} THEN CAST({quotedColumn} AS INTEGER) ELSE NULL END)";
}
