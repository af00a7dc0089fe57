using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Sqlite.Raw;
using SQLitePCL;

namespace DeltaSync.Sqlite.Destination;

/// <summary>
/// Record bases of tables several sources write (<c>_deltasync_records</c>: one JSON body per destination table and
/// encoded key), written in the batch's transaction, and the batched read of bases and current rows the merge needs.
/// </summary>
internal sealed partial class SqliteDestination
{
    internal const string RecordsTable = "_deltasync_records";
    private const int KeysPerRead = 400;

    private static string RecordsCreateSql =>
        $"CREATE TABLE IF NOT EXISTS {RecordsTable} (destination_table TEXT NOT NULL, key BLOB NOT NULL, body TEXT NOT NULL, PRIMARY KEY (destination_table, key)) WITHOUT ROWID;";

    internal const string EpochsTable = "_deltasync_merge_epochs";

    private static string EpochsCreateSql =>
        $"CREATE TABLE IF NOT EXISTS {EpochsTable} (destination_table TEXT PRIMARY KEY, epoch INTEGER NOT NULL);";

    public Task<long?> MergeEpochAsync(string destinationTable, bool advance, CancellationToken cancellationToken) =>
        WithWriterAsync<long?>(
            db =>
            {
                if (advance)
                {
                    using var bump = new RawStatement(db, $"INSERT INTO {EpochsTable} (destination_table, epoch) VALUES (?1, 1) ON CONFLICT (destination_table) DO UPDATE SET epoch = epoch + 1");
                    bump.Bind(1, destinationTable);
                    bump.Execute();
                }

                var read = Statement("\u0001epoch", () => $"SELECT epoch FROM {EpochsTable} WHERE destination_table = ?1");
                try
                {
                    read.Bind(1, destinationTable);
                    return read.Step() ? read.GetInt64(0) : 0;
                }
                finally
                {
                    read.Reset();
                }
            },
            cancellationToken);

    public Task<IReadOnlyDictionary<RecordKey, StoredRecord>> ReadRecordsAsync(string destinationTable, TableSchema schema, IReadOnlyCollection<RecordKey> keys, CancellationToken cancellationToken) =>
        ReadRecordsAsync(destinationTable, schema, keys, RecordParts.Both, cancellationToken);

    public Task<IReadOnlyDictionary<RecordKey, StoredRecord>> ReadRecordsAsync(string destinationTable, TableSchema schema, IReadOnlyCollection<RecordKey> keys, RecordParts parts, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(keys);
        return WithWriterAsync<IReadOnlyDictionary<RecordKey, StoredRecord>>(
            db =>
            {
                var wanted = keys.Distinct().ToList();
                var bases = new Dictionary<RecordKey, byte[]>(wanted.Count);
                var rows = new Dictionary<RecordKey, IReadOnlyDictionary<string, object?>>(wanted.Count);
                var table = SqliteSql.Quote(destinationTable);
                var keyColumns = schema.PrimaryKey;
                var width = keyColumns.Count;
                var tuple = width == 1 ? SqliteSql.Quote(keyColumns[0]) : "(" + SqliteSql.ColumnList(keyColumns) + ")";
                for (var start = 0; start < wanted.Count; start += KeysPerRead)
                {
                    var count = Math.Min(KeysPerRead, wanted.Count - start);
                    if ((parts & RecordParts.Bases) != 0)
                    {
                        ReadBases(db, destinationTable, wanted, start, count, bases);
                    }

                    if ((parts & RecordParts.Rows) == 0)
                    {
                        continue;
                    }

                    // Statements prepared once per table and list size (SqliteSql.InListSize), the rest of a list NULL.
                    var size = SqliteSql.InListSize(count, KeysPerRead);
                    var select = Statement($"{destinationTable}\u0001rows-read\u0001{size}", () => RowsReadSql(table, tuple, width, size));
                    try
                    {
                        for (var i = 0; i < size; i++)
                        {
                            for (var c = 0; c < width; c++)
                            {
                                select.Bind((i * width) + c + 1, i < count ? wanted[start + i].Values[c] : null);
                            }
                        }

                        string[]? names = null;
                        int[]? keyIndexes = null;
                        var columns = 0;
                        while (select.Step())
                        {
                            if (names is null)
                            {
                                // Read after the first step: a statement prepared once is recompiled there when the
                                // table's columns changed since, and its column list is only current from then on.
                                columns = select.ColumnCount;
                                names = new string[columns];
                                for (var c = 0; c < columns; c++)
                                {
                                    names[c] = select.ColumnName(c);
                                }

                                keyIndexes = keyColumns.Select(k => Array.FindIndex(names, n => string.Equals(n, k, StringComparison.OrdinalIgnoreCase))).ToArray();
                            }

                            var row = new Dictionary<string, object?>(columns, StringComparer.Ordinal);
                            var keyValues = new object?[width];
                            for (var c = 0; c < columns; c++)
                            {
                                row[names[c]] = select.GetValue(c);
                            }

                            for (var k = 0; k < width; k++)
                            {
                                keyValues[k] = row[names[keyIndexes![k]]];
                            }

                            rows[new RecordKey(keyValues)] = row;
                        }
                    }
                    finally
                    {
                        select.Reset();
                    }
                }

                var found = new Dictionary<RecordKey, StoredRecord>(wanted.Count);
                foreach (var key in wanted)
                {
                    var hasBase = bases.TryGetValue(key, out var body);
                    var hasRow = rows.TryGetValue(key, out var row);
                    if (hasBase || hasRow)
                    {
                        found[key] = new StoredRecord(body, row);
                    }
                }

                return found;
            },
            cancellationToken);
    }

    /// <summary>Adds the stored bases of <paramref name="count"/> keys of <paramref name="wanted"/> from <paramref name="start"/> to <paramref name="bases"/>.</summary>
    private void ReadBases(sqlite3 db, string destinationTable, List<RecordKey> wanted, int start, int count, Dictionary<RecordKey, byte[]> bases)
    {
        var size = SqliteSql.InListSize(count, KeysPerRead);
        var read = Statement($"{destinationTable}\u0001bases-read\u0001{size}", () => BasesReadSql(size));
        try
        {
            read.Bind(1, destinationTable);
            for (var i = 0; i < size; i++)
            {
                read.Bind(i + 2, i < count ? wanted[start + i].Encoded : null);
            }

            while (read.Step())
            {
                bases[RecordKey.FromEncoded((byte[])read.GetValue(0)!)] = read.GetUtf8(1);
            }
        }
        finally
        {
            read.Reset();
        }
    }

    public Task<IReadOnlyDictionary<RecordKey, long>> ReadRowDigestsAsync(string destinationTable, TableSchema schema, IReadOnlyCollection<RecordKey> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(keys);
        return WithWriterAsync<IReadOnlyDictionary<RecordKey, long>>(
            db =>
            {
                var wanted = keys.Distinct().ToList();
                var digests = new Dictionary<RecordKey, long>(wanted.Count);
                var keyColumns = schema.PrimaryKey;
                var width = keyColumns.Count;
                for (var start = 0; start < wanted.Count; start += KeysPerRead)
                {
                    var count = Math.Min(KeysPerRead, wanted.Count - start);
                    var size = SqliteSql.InListSize(count, KeysPerRead);
                    var select = Statement($"{destinationTable}\u0001digests-read\u0001{size}\u0001{Shape(schema)}", () => DigestsReadSql(destinationTable, schema, size));
                    try
                    {
                        for (var i = 0; i < size; i++)
                        {
                            for (var c = 0; c < width; c++)
                            {
                                select.Bind((i * width) + c + 1, i < count ? wanted[start + i].Values[c] : null);
                            }
                        }

                        while (select.Step())
                        {
                            var keyValues = new object?[width];
                            for (var k = 0; k < width; k++)
                            {
                                keyValues[k] = select.GetValue(k);
                            }

                            digests[new RecordKey(keyValues)] = select.GetInt64(width);
                        }
                    }
                    finally
                    {
                        select.Reset();
                    }
                }

                return digests;
            },
            cancellationToken);
    }

    /// <summary>The key columns and the digest of every schema column, for <paramref name="count"/> keys.</summary>
    private static string DigestsReadSql(string destinationTable, TableSchema schema, int count)
    {
        var keyColumns = schema.PrimaryKey;
        var width = keyColumns.Count;
        var tuple = width == 1 ? SqliteSql.Quote(keyColumns[0]) : "(" + SqliteSql.ColumnList(keyColumns) + ")";
        var values = string.Join(", ", Enumerable.Range(0, count).Select(i => width == 1 ? $"?{i + 1}" : "(" + string.Join(", ", Enumerable.Range(0, width).Select(c => $"?{(i * width) + c + 1}")) + ")"));
        var columns = string.Join(", ", schema.Columns.Select(c => SqliteSql.Quote(c.Name)));
        return $"SELECT {SqliteSql.ColumnList(keyColumns)}, {SqliteMergedDigest.Function}({columns}) FROM {SqliteSql.Quote(destinationTable)} WHERE {tuple} IN ({(width == 1 ? values : "VALUES " + values)})";
    }

    private static string BasesReadSql(int count) =>
        $"SELECT key, body FROM {RecordsTable} WHERE destination_table = ?1 AND key IN ({string.Join(", ", Enumerable.Range(2, count).Select(i => $"?{i}"))})";

    private static string RowsReadSql(string table, string tuple, int width, int count)
    {
        var values = string.Join(", ", Enumerable.Range(0, count).Select(i => width == 1 ? $"?{i + 1}" : "(" + string.Join(", ", Enumerable.Range(0, width).Select(c => $"?{(i * width) + c + 1}")) + ")"));
        return $"SELECT * FROM {table} WHERE {tuple} IN ({(width == 1 ? values : "VALUES " + values)})";
    }

    public Task WriteRecordBasesAsync(string destinationTable, IReadOnlyList<RecordBaseWrite> bases, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(bases);
        return WithWriterAsync(
            db =>
            {
                Exec(db, "BEGIN IMMEDIATE");
                try
                {
                    WriteRecordBases(db, destinationTable, bases);
                    Exec(db, "COMMIT");
                }
                catch
                {
                    if (raw.sqlite3_get_autocommit(db) == 0)
                    {
                        Exec(db, "ROLLBACK");
                    }

                    throw;
                }

                return true;
            },
            cancellationToken);
    }

    private void WriteRecordBases(sqlite3 db, string destinationTable, IReadOnlyList<RecordBaseWrite> records)
    {
        var upsert = Statement("\u0001records", () => $"INSERT INTO {RecordsTable} (destination_table, key, body) VALUES (?1, ?2, ?3) ON CONFLICT (destination_table, key) DO UPDATE SET body = excluded.body");
        foreach (var record in records)
        {
            upsert.Bind(1, destinationTable);
            upsert.Bind(2, record.Key.Encoded);
            upsert.BindUtf8Text(3, record.Body);
            upsert.Execute();
        }
    }
}
