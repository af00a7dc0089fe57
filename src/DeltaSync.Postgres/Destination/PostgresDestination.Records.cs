using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Postgres.Source;
using Npgsql;
using NpgsqlTypes;

namespace DeltaSync.Postgres.Destination;

/// <summary>
/// Record bases of tables several sources write (<c>deltasync.records</c>: one JSON body per destination table and
/// encoded key), written in the batch's transaction, and the batched read of bases and current rows the merge needs.
/// Rows are read with the captures' own value mapping, so they compare with what a PostgreSQL source sends.
/// </summary>
internal sealed partial class PostgresDestination
{
    private const int KeysPerRead = 1000;

    private string RecordsTable => PostgresSql.Qualified(Schema, "records");

    private string RecordsCreateSql =>
        $"CREATE TABLE IF NOT EXISTS {RecordsTable} (destination_table text NOT NULL, key bytea NOT NULL, body text NOT NULL, PRIMARY KEY (destination_table, key)) WITH (fillfactor = {PostgresLedger.FillFactor});" +
        $"DO $$ BEGIN {PostgresLedger.FillFactorMigration(RecordsTable)} END $$;";

    public Task<IReadOnlyDictionary<RecordKey, StoredRecord>> ReadRecordsAsync(string destinationTable, TableSchema schema, IReadOnlyCollection<RecordKey> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(keys);
        return WithTableAsync<IReadOnlyDictionary<RecordKey, StoredRecord>>(
            destinationTable,
            async connection =>
            {
                await EnsureSchemaAsync(connection, cancellationToken).ConfigureAwait(false);
                var wanted = keys.Distinct().ToList();
                var bases = new Dictionary<RecordKey, byte[]>(wanted.Count);
                // The body as UTF-8 bytes, the form the codec reads.
                await using (var command = new NpgsqlCommand($"SELECT key, convert_to(body, 'UTF8') FROM {RecordsTable} WHERE destination_table = $1 AND key = ANY ($2)", connection))
                {
                    command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = destinationTable });
                    command.Parameters.Add(new NpgsqlParameter<byte[][]> { TypedValue = wanted.Select(k => k.Encoded).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
                    await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        bases[RecordKey.FromEncoded((byte[])reader.GetValue(0))] = reader.GetFieldValue<byte[]>(1);
                    }
                }

                var rows = new Dictionary<RecordKey, IReadOnlyDictionary<string, object?>>(wanted.Count);
                var table = _tables.TryGetValue(destinationTable, out var slot) && slot.Writer is { } writer
                    ? writer.Target
                    : await PostgresCatalog.ReadAsync(connection, destinationTable, cancellationToken).ConfigureAwait(false);
                if (table is not null)
                {
                    var mapper = new PostgresRowMapper(table, schema, "destination");
                    var keyColumns = schema.PrimaryKey.Select(mapper.Column).ToList();
                    for (var start = 0; start < wanted.Count; start += KeysPerRead)
                    {
                        var chunk = wanted.GetRange(start, Math.Min(KeysPerRead, wanted.Count - start));
                        await using var select = new NpgsqlCommand { Connection = connection };
                        var tuples = new List<string>(chunk.Count);
                        foreach (var key in chunk)
                        {
                            var marks = new List<string>(keyColumns.Count);
                            for (var i = 0; i < keyColumns.Count; i++)
                            {
                                select.Parameters.Add(new NpgsqlParameter { Value = PostgresValues.ToColumn(key.Values[i], keyColumns[i]) ?? DBNull.Value });
                                var mark = "$" + select.Parameters.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
                                marks.Add(keyColumns[i].IsNative ? $"{mark}::{keyColumns[i].CastType}" : mark);
                            }

                            tuples.Add("(" + string.Join(", ", marks) + ")");
                        }

                        var keyList = string.Join(", ", keyColumns.Select(c => c.IsNative ? PostgresSql.Quote(c.Name) : PostgresSql.Quote(c.Name) + "::text"));
                        select.CommandText = $"SELECT {mapper.SelectList()} FROM {table.QualifiedName} WHERE ({keyList}) IN ({string.Join(", ", tuples)})";
                        await using var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                        {
                            var values = mapper.ReadValues(reader);
                            var row = new Dictionary<string, object?>(values.Length, StringComparer.Ordinal);
                            for (var i = 0; i < values.Length; i++)
                            {
                                row[schema.Columns[i].Name] = values[i];
                            }

                            rows[schema.KeyOf(values)] = row;
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

    private async Task WriteRecordBasesAsync(NpgsqlConnection connection, string destinationTable, IReadOnlyList<RecordBaseWrite> records, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            $"INSERT INTO {RecordsTable} (destination_table, key, body) SELECT $1, k, convert_from(b, 'UTF8') FROM unnest($2::bytea[], $3::bytea[]) AS r(k, b) " +
            "ON CONFLICT (destination_table, key) DO UPDATE SET body = excluded.body",
            connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = destinationTable });
        command.Parameters.Add(new NpgsqlParameter<byte[][]> { TypedValue = records.Select(r => r.Key.Encoded).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
        command.Parameters.Add(new NpgsqlParameter<byte[][]> { TypedValue = records.Select(r => r.Body).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
