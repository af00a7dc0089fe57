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

    public Task<IReadOnlyDictionary<RecordKey, StoredRecord>> ReadRecordsAsync(string destinationTable, TableSchema schema, IReadOnlyCollection<RecordKey> keys, CancellationToken cancellationToken)
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
                    // Full chunks reuse two statements prepared once per table; only a batch's last chunk is prepared for its size.
                    var full = count == KeysPerRead;
                    var read = full
                        ? Statement(destinationTable + "\u0001bases-read", () => BasesReadSql(count))
                        : new RawStatement(db, BasesReadSql(count));
                    try
                    {
                        read.Bind(1, destinationTable);
                        for (var i = 0; i < count; i++)
                        {
                            read.Bind(i + 2, wanted[start + i].Encoded);
                        }

                        while (read.Step())
                        {
                            bases[RecordKey.FromEncoded((byte[])read.GetValue(0)!)] = read.GetUtf8(1);
                        }
                    }
                    finally
                    {
                        if (full)
                        {
                            read.Reset();
                        }
                        else
                        {
                            read.Dispose();
                        }
                    }

                    var select = full
                        ? Statement(destinationTable + "\u0001rows-read", () => RowsReadSql(table, tuple, width, count))
                        : new RawStatement(db, RowsReadSql(table, tuple, width, count));
                    try
                    {
                        for (var i = 0; i < count; i++)
                        {
                            for (var c = 0; c < width; c++)
                            {
                                select.Bind((i * width) + c + 1, wanted[start + i].Values[c]);
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
                        if (full)
                        {
                            select.Reset();
                        }
                        else
                        {
                            select.Dispose();
                        }
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

    private static string BasesReadSql(int count) =>
        $"SELECT key, body FROM {RecordsTable} WHERE destination_table = ?1 AND key IN ({string.Join(", ", Enumerable.Range(2, count).Select(i => $"?{i}"))})";

    private static string RowsReadSql(string table, string tuple, int width, int count)
    {
        var values = string.Join(", ", Enumerable.Range(0, count).Select(i => width == 1 ? $"?{i + 1}" : "(" + string.Join(", ", Enumerable.Range(0, width).Select(c => $"?{(i * width) + c + 1}")) + ")"));
        return $"SELECT * FROM {table} WHERE {tuple} IN ({(width == 1 ? values : "VALUES " + values)})";
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
