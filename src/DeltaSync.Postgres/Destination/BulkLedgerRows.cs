using System.Globalization;
using System.Text.Json;
using DeltaSync.Core.Capture;
using DeltaSync.Core.Model;
using DeltaSync.Postgres.Source;

namespace DeltaSync.Postgres.Destination;

/// <summary>
/// The ledger entries of a bulk-loaded table kept as a rule rather than as rows: every row of the destination table
/// whose key has no entry of its own in <c>deltasync.ledger</c> counts as applied by the load, with the entry the
/// load would have written — its encoded key, position and commit time computed from the row's key and cursor
/// columns, and PostgreSQL's digest of the row (<see cref="PostgresRowMapper.DigestSql(IEnumerable{string?}, string?)"/>)
/// as its hash, marked as a source digest. The load then costs the ledger nothing per row; a record's first write
/// stores a real entry, which shadows the rule from then on.
/// </summary>
/// <remarks>
/// Kept in <c>ledger_scopes.bulk_rows</c> as JSON naming columns only (every one quoted where SQL is built), so the
/// rule is what the load computed even if the configuration changes later. The expressions match
/// <see cref="KeyEncoding"/> and the captures' positions byte for byte; they are offered only for the column types
/// <see cref="Capture.PostgresSnapshotCopy"/> accepts (integer and text keys, native column types).
/// </remarks>
internal sealed record BulkLedgerRows
{
    /// <summary>The destination table's schema.</summary>
    public required string Schema { get; init; }

    /// <summary>The destination table's name.</summary>
    public required string Table { get; init; }

    /// <summary>The columns digested, in the source's schema order (the order captures digest them in).</summary>
    public required IReadOnlyList<string> Columns { get; init; }

    /// <summary>The key columns in key order.</summary>
    public required IReadOnlyList<KeyColumn> Keys { get; init; }

    /// <summary>A per-row version column (position <c>version:n</c>), or null.</summary>
    public string? Version { get; init; }

    /// <summary>A sequence cursor column (position <c>sequence:n|</c>), or null.</summary>
    public string? Sequence { get; init; }

    /// <summary>A timestamp cursor (the commit time), or null.</summary>
    public TimestampCursor? Timestamp { get; init; }

    /// <summary>One key column; <paramref name="Integer"/> for int2/int4/int8, otherwise text or varchar.</summary>
    internal sealed record KeyColumn(string Name, bool Integer);

    /// <summary>The timestamp cursor's column, the created_at column standing in for a NULL one, and whether it is a date.</summary>
    internal sealed record TimestampCursor(string Name, string? CreatedAt, bool IsDate);

    public string QualifiedTable => PostgresSql.Qualified(Schema, Table);

    public string Serialize() => JsonSerializer.Serialize(this);

    public static BulkLedgerRows Parse(string json) =>
        JsonSerializer.Deserialize<BulkLedgerRows>(json) ?? throw new JsonException("empty bulk ledger description");

    /// <summary>The encoded ledger key of row <paramref name="t"/>, byte for byte <see cref="KeyEncoding.Encode"/>.</summary>
    public string KeySql(string t) => string.Join(" || ", Keys.Select(k => KeyPartSql(k, t)));

    /// <summary>The ledger position row <paramref name="t"/> gets (as the capture's ledger stores it), or NULL.</summary>
    public string PositionSql(string t)
    {
        if (Version is { } version)
        {
            return $"'{LedgerDiff.VersionKind}:' || coalesce({Column(version, t)}::text, '')";
        }

        if (Sequence is { } sequence)
        {
            // A timestamp cursor's per-row position is not stored (commit_us orders it); a sequence's is "sequence:<n>|".
            return $"'{CursorPosition.SequenceKind}:' || {Column(sequence, t)}::text || '|'";
        }

        return "NULL::text";
    }

    /// <summary>Row <paramref name="t"/>'s commit time in epoch microseconds (timestamp cursors), or NULL.</summary>
    public string CommitSql(string t)
    {
        if (Timestamp is not { } cursor)
        {
            return "NULL::bigint";
        }

        var value = cursor.CreatedAt is { } created ? $"COALESCE({Column(cursor.Name, t)}, {Column(created, t)})" : Column(cursor.Name, t);
        var asTimestamp = cursor.IsDate ? $"({value})::timestamp" : value;
        // ±infinity reaches the capture as the CLR type's MaxValue / MinValue (and counts as a future timestamp there).
        var (latest, earliest) = cursor.IsDate
            ? (EpochMicros(DateOnly.MaxValue.ToDateTime(TimeOnly.MinValue)), EpochMicros(DateOnly.MinValue.ToDateTime(TimeOnly.MinValue)))
            : (EpochMicros(DateTime.MaxValue), EpochMicros(DateTime.MinValue));
        // extract(epoch …) is numeric, so exact, from PostgreSQL 14 on.
        return string.Create(
            CultureInfo.InvariantCulture,
            $"CASE WHEN isfinite({value}) THEN (extract(epoch FROM {asTimestamp}) * 1000000)::bigint WHEN {value} > 'epoch' THEN {latest}::bigint WHEN {value} < 'epoch' THEN {earliest}::bigint END");
    }

    /// <summary>Over entries (columns <c>position</c>, <c>commit_us</c>): a row with no cursor value.</summary>
    public string NullCursorSql =>
        Timestamp is not null ? "commit_us IS NULL" : Sequence is not null ? "position IS NULL" : "false";

    /// <summary>Rows whose created_at stood in for a NULL updated_at; null when no fallback applies.</summary>
    public string? CreatedAtFallbackSql =>
        Timestamp is { CreatedAt: { } created } cursor
            ? $"SELECT count(*) FROM {QualifiedTable} t WHERE {Column(cursor.Name, "t")} IS NULL AND {Column(created, "t")} IS NOT NULL"
            : null;

    /// <summary>
    /// The entries the rule gives the table's rows (alias <c>t</c>), filtered by <paramref name="where"/>, without the
    /// keys that have an entry of their own in scope <c>$1</c> of <paramref name="ledger"/>. Columns as the ledger's:
    /// key, position, commit_us, row_hash, deleted, source_digest.
    /// </summary>
    public string EntriesSql(string ledger, string? where = null) => $"""
        SELECT e.* FROM (
          SELECT {KeySql("t")} AS key, {PositionSql("t")} AS position, {CommitSql("t")} AS commit_us,
                 {PostgresRowMapper.DigestSql(Columns, "t")} AS row_hash, false AS deleted, true AS source_digest
          FROM {QualifiedTable} t{(where is null ? "" : " WHERE " + where)}) e
        WHERE NOT EXISTS (SELECT 1 FROM {ledger} l WHERE l.scope_id = $1 AND l.key = e.key)
        """;

    /// <summary>
    /// A filter of the table's rows (alias <c>t</c>) to the given keys by its key columns (so by its primary key's
    /// index), reading parameters from <c>$<paramref name="firstParameter"/></c> on: one array per key column, bigint
    /// for integer columns, text otherwise. Keys whose values are not of the column's kind cannot be the table's and
    /// are left out.
    /// </summary>
    public (string Sql, object[] Parameters) KeyFilter(IEnumerable<RecordKey> keys, int firstParameter)
    {
        var fitting = keys.Where(k => k.Values.Count == Keys.Count && Fits(k)).ToList();
        var parameters = Keys.Select((column, i) => column.Integer
            ? (object)fitting.Select(k => Convert.ToInt64(k.Values[i], CultureInfo.InvariantCulture)).ToArray()
            : fitting.Select(k => (string)k.Values[i]!).ToArray()).ToArray();
        string Type(int i) => Keys[i].Integer ? "int8[]" : "text[]";
        if (Keys.Count == 1)
        {
            return ($"{Column(Keys[0].Name, "t")} = ANY (${firstParameter}::{Type(0)})", parameters);
        }

        var arrays = string.Join(", ", Keys.Select((_, i) => $"${firstParameter + i}::{Type(i)}"));
        var names = string.Join(", ", Keys.Select((_, i) => "k" + i.ToString(CultureInfo.InvariantCulture)));
        var match = string.Join(", ", Keys.Select(k => Column(k.Name, "t")));
        return ($"({match}) IN (SELECT {names} FROM unnest({arrays}) AS k({names}))", parameters);
    }

    private bool Fits(RecordKey key)
    {
        for (var i = 0; i < Keys.Count; i++)
        {
            var fits = Keys[i].Integer
                ? key.Values[i] is long or int or short or sbyte or byte or ushort or uint
                : key.Values[i] is string;
            if (!fits)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// One key column as <see cref="KeyEncoding"/> writes it: integers as tag 0x15 and the big-endian value with the
    /// sign bit flipped; text as tag 0x20, its UTF-8 and 0x00 0x00 (PostgreSQL text holds no NUL to escape).
    /// </summary>
    private static string KeyPartSql(KeyColumn column, string t)
    {
        var value = Column(column.Name, t);
        var encoded = column.Integer
            ? $"'\\x15'::bytea || int8send({value}::int8 # (-9223372036854775808)::int8)"
            : $"'\\x20'::bytea || convert_to({value}, 'UTF8') || '\\x0000'::bytea";
        return $"(CASE WHEN {value} IS NULL THEN '\\x05'::bytea ELSE {encoded} END)";
    }

    private static string Column(string name, string t) => $"{t}.{PostgresSql.Quote(name)}";

    private static long EpochMicros(DateTime value) => (value.Ticks - DateTime.UnixEpoch.Ticks) / 10;
}
