using System.Globalization;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using Npgsql;

namespace DeltaSync.Postgres.Reconcile;

/// <summary>
/// One PostgreSQL table (source or destination) as key-range digests, computed by the server: the per-row hash is
/// <c>hashtextextended(ROW(c1, …, cn)::text, 0)</c> over the source's columns in source column order, the digest
/// their <c>numeric</c> sum folded to 64 bits. Sessions run with <c>TimeZone = UTC</c> so time values print alike on
/// both servers; text key columns compare with <c>COLLATE "C"</c> so two databases with different default collations
/// still cut ranges at the same keys.
/// </summary>
internal sealed class PostgresRangeDigests : IRangeDigests
{
    /// <summary>Names the hash and its projection; both sides must report the same to be compared.</summary>
    public const string Function = "postgresql-hashtextextended-row-text-v1";

    private static readonly decimal TwoTo64 = 18446744073709551616m;

    private readonly NpgsqlConnection _connection;
    private readonly string _table;
    private readonly IReadOnlyList<ColumnSchema> _key;
    private readonly string _rowHash;
    private readonly string _order;

    private PostgresRangeDigests(NpgsqlConnection connection, string table, TableSchema sourceSchema)
    {
        _connection = connection;
        var (schemaName, tableName) = PostgresSql.SplitName(table);
        _table = schemaName is null ? PostgresSql.Quote(tableName) : PostgresSql.Qualified(schemaName, tableName);
        _key = sourceSchema.KeyIndexes.Select(i => sourceSchema.Columns[i]).ToList();
        _rowHash = $"hashtextextended(ROW({PostgresSql.ColumnList(sourceSchema.Columns.Select(c => c.Name))})::text, 0)";
        _order = string.Join(", ", _key.Select(Term));
    }

    public string HashFunction => Function;

    /// <summary>The digests of <paramref name="table"/> on an open connection it then owns; null when the table lacks a source column or the key.</summary>
    public static async Task<IRangeDigests?> OpenAsync(NpgsqlConnection connection, string table, TableSchema sourceSchema, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(sourceSchema);
        try
        {
            var (schemaName, tableName) = PostgresSql.SplitName(table);
            await using (var columns = new NpgsqlCommand(
                "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped AND attname = ANY($2)", connection))
            {
                columns.Parameters.AddWithValue(schemaName is null ? PostgresSql.Quote(tableName) : PostgresSql.Qualified(schemaName, tableName));
                columns.Parameters.AddWithValue(sourceSchema.Columns.Select(c => c.Name).ToArray());
                var found = Convert.ToInt64(await columns.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
                if (sourceSchema.PrimaryKey.Count == 0 || found != sourceSchema.Columns.Count)
                {
                    await connection.DisposeAsync().ConfigureAwait(false);
                    return null;
                }
            }

            await using (var utc = new NpgsqlCommand("SET TimeZone = 'UTC'; SET extra_float_digits = 1", connection))
            {
                await utc.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            return new PostgresRangeDigests(connection, table, sourceSchema);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask<RangeDigest> DigestAsync(KeyRange range, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(range);
        await using var command = Command($"SELECT count(*), coalesce(sum({_rowHash}), 0) FROM {_table}{Where(range)}", range);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        return new RangeDigest(reader.GetInt64(0), Fold(reader.GetDecimal(1)));
    }

    public async ValueTask<RecordKey?> KeyAtAsync(KeyRange range, long offset, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(range);
        await using var command = Command($"SELECT {KeyList()} FROM {_table}{Where(range)} ORDER BY {_order} LIMIT 1 OFFSET {offset.ToString(CultureInfo.InvariantCulture)}", range);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? new RecordKey(ReadKey(reader)) : null;
    }

    public async ValueTask<IReadOnlyList<LeafRow>> LeafAsync(KeyRange range, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(range);
        await using var command = Command($"SELECT {KeyList()}, {_rowHash} FROM {_table}{Where(range)} ORDER BY {_order}", range);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var rows = new List<LeafRow>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            rows.Add(new LeafRow(new RecordKey(ReadKey(reader)), reader.GetInt64(_key.Count)));
        }

        return rows;
    }

    public ValueTask DisposeAsync() => _connection.DisposeAsync();

    /// <summary>The exact numeric sum, reduced modulo 2⁶⁴ into a signed 64-bit value (the same on both sides).</summary>
    private static long Fold(decimal sum)
    {
        var reduced = sum % TwoTo64;
        if (reduced < 0)
        {
            reduced += TwoTo64;
        }

        return unchecked((long)(ulong)reduced);
    }

    /// <summary>The key columns; a numeric one as text (Npgsql reads numeric only into decimal: no NaN, no 29+ digits).</summary>
    private string KeyList() => string.Join(", ", _key.Select(c => PostgresSql.Quote(c.Name) + (c.Kind == DataKind.Numeric ? "::text" : "")));

    private object?[] ReadKey(NpgsqlDataReader reader)
    {
        var values = new object?[_key.Count];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = reader.IsDBNull(i) ? null : _key[i].Kind == DataKind.Numeric ? PgNumeric.FromText(reader.GetString(i)) : reader.GetValue(i);
        }

        return values;
    }

    /// <summary>
    /// A key column as ranges order and compare it: strings byte-wise (<c>COLLATE "C"</c>); other types of the text kind
    /// (time, inet, an enum…), which take no collation, by their text the same way, as their ledger keys order.
    /// </summary>
    private static string Term(ColumnSchema column)
    {
        if (column.Kind != DataKind.Text)
        {
            return PostgresSql.Quote(column.Name);
        }

        var declared = column.DeclaredType.ToLowerInvariant();
        var isString = declared.StartsWith("text", StringComparison.Ordinal) || declared.StartsWith("character", StringComparison.Ordinal)
            || declared.StartsWith("varchar", StringComparison.Ordinal) || declared.StartsWith("char", StringComparison.Ordinal)
            || declared.StartsWith("bpchar", StringComparison.Ordinal) || declared is "name" or "citext";
        return isString ? $"{PostgresSql.Quote(column.Name)} COLLATE \"C\"" : $"({PostgresSql.Quote(column.Name)}::text COLLATE \"C\")";
    }

    private string Where(KeyRange range)
    {
        var terms = new List<string>(2);
        if (range.Low is not null)
        {
            terms.Add(Compare(1, ">", ">"));
        }

        if (range.High is not null)
        {
            terms.Add(Compare(1 + _key.Count, "<", "<="));
        }

        return terms.Count == 0 ? "" : " WHERE " + string.Join(" AND ", terms);
    }

    /// <summary>Lexicographic comparison with parameters <c>$first…</c>, expanded so a one-column key is a plain index range.</summary>
    private string Compare(int first, string strict, string last)
    {
        var terms = new List<string>(_key.Count);
        for (var i = 0; i < _key.Count; i++)
        {
            var parts = new List<string>(i + 1);
            for (var j = 0; j < i; j++)
            {
                parts.Add($"{Term(_key[j])} = {Parameter(first + j, _key[j])}");
            }

            parts.Add($"{Term(_key[i])} {(i == _key.Count - 1 ? last : strict)} {Parameter(first + i, _key[i])}");
            terms.Add("(" + string.Join(" AND ", parts) + ")");
        }

        return "(" + string.Join(" OR ", terms) + ")";
    }

    private static string Parameter(int index, ColumnSchema column) =>
        $"${index.ToString(CultureInfo.InvariantCulture)}" + (column.Kind switch
        {
            DataKind.Text => "::text",
            // A bound beyond decimal is its exact text.
            DataKind.Numeric => "::text::numeric",
            _ => "",
        });

    private NpgsqlCommand Command(string sql, KeyRange range)
    {
        var command = new NpgsqlCommand(sql, _connection);
        foreach (var bound in new[] { range.Low, range.High })
        {
            if (bound is null)
            {
                // Unused parameters would still be numbered; the other bound's placeholders start after the key.
                foreach (var _ in _key)
                {
                    command.Parameters.Add(new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
                }

                continue;
            }

            foreach (var value in bound.Values)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
            }
        }

        return command;
    }
}
