using System.IO.Hashing;
using System.Text;

namespace DeltaSync.Core.Model;

/// <summary>A table's columns and primary key. Column order is the order of <see cref="ChangeEvent.Values"/>.</summary>
public sealed class TableSchema
{
    public TableSchema(string name, IReadOnlyList<ColumnSchema> columns, IReadOnlyList<string> primaryKey)
    {
        ArgumentNullException.ThrowIfNull(columns);
        ArgumentNullException.ThrowIfNull(primaryKey);
        Name = name;
        Columns = columns;
        PrimaryKey = primaryKey;
        var indexes = new int[primaryKey.Count];
        for (var i = 0; i < primaryKey.Count; i++)
        {
            indexes[i] = IndexOf(primaryKey[i]);
            if (indexes[i] < 0)
            {
                throw new ArgumentException($"primary key column '{primaryKey[i]}' is not a column of table '{name}'", nameof(primaryKey));
            }
        }

        KeyIndexes = indexes;
    }

    public string Name { get; }

    /// <summary>The kind of system that described the table (<c>sqlite</c>, <c>postgresql</c>): a destination of the same
    /// kind keeps the declared types as they are, another maps them by <see cref="ColumnSchema.Kind"/>.</summary>
    public string Dialect { get; init; } = "";

    /// <summary>
    /// The source's own full name for the table where <see cref="Name"/> alone does not tell tables apart (PostgreSQL:
    /// <c>sales.items</c> and <c>public.items</c> are both <c>items</c>); a connector keys what it keeps per table by
    /// it. Null where the name is enough.
    /// </summary>
    public string? SourceTable { get; init; }

    public IReadOnlyList<ColumnSchema> Columns { get; }

    /// <summary>Primary key column names, in key order.</summary>
    public IReadOnlyList<string> PrimaryKey { get; }

    /// <summary>Indexes into <see cref="Columns"/> of the key columns, in key order.</summary>
    public IReadOnlyList<int> KeyIndexes { get; }

    public int IndexOf(string column)
    {
        for (var i = 0; i < Columns.Count; i++)
        {
            if (string.Equals(Columns[i].Name, column, StringComparison.OrdinalIgnoreCase))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>The key of a full row given in column order.</summary>
    public RecordKey KeyOf(object?[] row)
    {
        ArgumentNullException.ThrowIfNull(row);
        var values = new object?[KeyIndexes.Count];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = row[KeyIndexes[i]];
        }

        return new RecordKey(values);
    }

    /// <summary>A short stable hash of names, kinds and key; changes when the shape of the table changes.</summary>
    public string Fingerprint()
    {
        var text = new StringBuilder();
        foreach (var c in Columns)
        {
            text.Append(c.Name).Append(':').Append(c.Kind).Append(':').Append(c.PrimaryKeyOrdinal).Append(';');
        }

        return Convert.ToHexStringLower(XxHash64.Hash(Encoding.UTF8.GetBytes(text.ToString())));
    }
}
