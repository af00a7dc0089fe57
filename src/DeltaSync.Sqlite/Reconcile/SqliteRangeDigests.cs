using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Sqlite.Raw;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Sqlite.Reconcile;

/// <summary>
/// One SQLite table (source or destination) as key-range digests over the source's columns, in source column order,
/// on its own read connection. A range is <c>(low, high]</c> in <c>ORDER BY key COLLATE BINARY</c>, the order the
/// captures and the ledger use; with an integer key it is a rowid range scan.
/// </summary>
internal sealed class SqliteRangeDigests : IRangeDigests
{
    private readonly SqliteConnection _connection;
    private readonly string _table;
    private readonly IReadOnlyList<string> _key;
    private readonly string _rowHash;

    private SqliteRangeDigests(SqliteConnection connection, string table, TableSchema sourceSchema)
    {
        _connection = connection;
        _table = SqliteSql.Quote(table);
        _key = sourceSchema.PrimaryKey;
        _rowHash = $"deltasync_row_hash({SqliteSql.ColumnList(sourceSchema.Columns.Select(c => c.Name))})";
    }

    public string HashFunction => SqliteRowHashFunctions.HashFunction;

    /// <summary>
    /// The digests of <paramref name="table"/> in the database at <paramref name="path"/>; null when the table is
    /// missing, lacks one of the source's columns or has no key (nothing to compare by range).
    /// </summary>
    public static IRangeDigests? Open(string path, string table, TableSchema sourceSchema, string role)
    {
        if (sourceSchema.PrimaryKey.Count == 0)
        {
            return null;
        }

        var connection = SqliteConnectionFactory.Open(path, mustExist: true, role);
        try
        {
            var columns = SqliteCatalog.Columns(connection, table);
            if (columns is null || sourceSchema.Columns.Any(c => !columns.Any(d => string.Equals(d.Name, c.Name, StringComparison.OrdinalIgnoreCase))))
            {
                connection.Dispose();
                return null;
            }

            SqliteRowHashFunctions.Register(connection.Handle!);
            return new SqliteRangeDigests(connection, table, sourceSchema);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    public ValueTask<RangeDigest> DigestAsync(KeyRange range, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(range);
        using var statement = Prepare($"SELECT count(*), deltasync_hash_sum({_rowHash}) FROM {_table}{Where(range)}", range);
        statement.Step();
        return ValueTask.FromResult(new RangeDigest(statement.GetInt64(0), statement.IsNull(1) ? 0 : statement.GetInt64(1)));
    }

    public ValueTask<RecordKey?> KeyAtAsync(KeyRange range, long offset, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(range);
        using var statement = Prepare($"SELECT {SqliteSql.ColumnList(_key)} FROM {_table}{Where(range)} ORDER BY {SqliteSql.KeyOrder(_key)} LIMIT 1 OFFSET {offset}", range);
        return ValueTask.FromResult(statement.Step() ? new RecordKey(statement.ReadRow(_key.Count)) : null);
    }

    public ValueTask<IReadOnlyList<LeafRow>> LeafAsync(KeyRange range, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(range);
        using var statement = Prepare($"SELECT {SqliteSql.ColumnList(_key)}, {_rowHash} FROM {_table}{Where(range)} ORDER BY {SqliteSql.KeyOrder(_key)}", range);
        var rows = new List<LeafRow>();
        while (statement.Step())
        {
            cancellationToken.ThrowIfCancellationRequested();
            var values = statement.ReadRow(_key.Count + 1);
            rows.Add(new LeafRow(new RecordKey(values[.._key.Count]), (long)values[_key.Count]!));
        }

        return ValueTask.FromResult<IReadOnlyList<LeafRow>>(rows);
    }

    public ValueTask DisposeAsync()
    {
        _connection.Dispose();
        return ValueTask.CompletedTask;
    }

    private string Where(KeyRange range)
    {
        var terms = new List<string>(2);
        if (range.Low is not null)
        {
            terms.Add(SqliteSql.KeyAfter(_key, 1));
        }

        if (range.High is not null)
        {
            terms.Add(KeyAtMost(_key, 1 + _key.Count));
        }

        return terms.Count == 0 ? "" : " WHERE " + string.Join(" AND ", terms);
    }

    /// <summary><c>key ≤ (?first, …)</c> in key order, written out so SQLite can use the key's index.</summary>
    private static string KeyAtMost(IReadOnlyList<string> key, int firstParameter)
    {
        var terms = new List<string>();
        for (var i = 0; i < key.Count; i++)
        {
            var parts = new List<string>();
            for (var j = 0; j < i; j++)
            {
                parts.Add($"{SqliteSql.Quote(key[j])} = ?{firstParameter + j} COLLATE BINARY");
            }

            var op = i == key.Count - 1 ? "<=" : "<";
            parts.Add($"{SqliteSql.Quote(key[i])} {op} ?{firstParameter + i} COLLATE BINARY");
            terms.Add("(" + string.Join(" AND ", parts) + ")");
        }

        return "(" + string.Join(" OR ", terms) + ")";
    }

    private RawStatement Prepare(string sql, KeyRange range)
    {
        var statement = new RawStatement(_connection.Handle!, sql);
        try
        {
            for (var i = 0; range.Low is not null && i < _key.Count; i++)
            {
                statement.Bind(1 + i, range.Low.Values[i]);
            }

            for (var i = 0; range.High is not null && i < _key.Count; i++)
            {
                statement.Bind(1 + _key.Count + i, range.High.Values[i]);
            }

            return statement;
        }
        catch
        {
            statement.Dispose();
            throw;
        }
    }
}
