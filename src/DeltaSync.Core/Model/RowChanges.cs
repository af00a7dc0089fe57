using System.Text;
using System.Text.Json;
using NodaTime;

namespace DeltaSync.Core.Model;

/// <summary>How every capture turns a row it read into a change event or a dead letter, whatever the source.</summary>
public static class RowChanges
{
    /// <summary>The row exists now with these values (hashed once here, for the ledger).</summary>
    /// <param name="key">The row's key when the caller has it already (it must be <c>schema.KeyOf(values)</c>).</param>
    public static ChangeEvent Upsert(TableSchema schema, string source, object?[] values, Position position, Instant? commitTime, RecordKey? key = null)
    {
        ArgumentNullException.ThrowIfNull(schema);
        return new(schema.Name, key ?? schema.KeyOf(values), ChangeOperation.Upsert, values, position, commitTime, source)
        {
            RowHash = Ledger.RowHash.Compute(values),
        };
    }

    public static ChangeEvent Delete(TableSchema schema, string source, RecordKey key, Position position, Instant? commitTime)
    {
        ArgumentNullException.ThrowIfNull(schema);
        return new(schema.Name, key, ChangeOperation.Delete, null, position, commitTime, source);
    }

    /// <summary>A row that cannot become a change, with the reason, for the dead-letter queue.</summary>
    public static DeadLetter DeadLetter(TableSchema schema, string stream, object?[] values, string reason, Position position, Instant now)
    {
        ArgumentNullException.ThrowIfNull(schema);
        return new(stream, schema.Name, schema.KeyOf(values).ToString(), RowJson(schema, values), reason, ErrorClass.Permanent, position, now);
    }

    /// <summary>
    /// A record as a dead letter keeps it: the whole row as JSON, or — for a delete, which carries no row — its key
    /// columns, so that a replay can find the record again.
    /// </summary>
    public static string RecordJson(TableSchema schema, RecordKey key, object?[]? values)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(key);
        return values is not null
            ? RowJson(schema, values)
            : RowJson(new TableSchema(schema.Name, schema.KeyIndexes.Select(i => schema.Columns[i]).ToList(), schema.PrimaryKey), key.Values.ToArray());
    }

    /// <summary>The row as a JSON object keyed by column name.</summary>
    public static string RowJson(TableSchema schema, object?[] values)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(values);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            for (var i = 0; i < values.Length; i++)
            {
                json.WritePropertyName(schema.Columns[i].Name);
                PortableValue.WriteJson(json, values[i]);
            }

            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}
