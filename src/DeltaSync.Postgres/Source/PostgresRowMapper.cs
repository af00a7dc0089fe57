using System.Text;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using Npgsql;
using NodaTime;

namespace DeltaSync.Postgres.Source;

/// <summary>
/// Builds a table's SELECT (every column in schema order; types Npgsql does not map travel as text), reads its rows
/// as engine values, and orders keys the way the ledger does: integers numerically, text by code point
/// (<c>COLLATE "C"</c>), uuid and bytea by bytes.
/// </summary>
internal sealed class PostgresRowMapper
{
    private readonly PgTable _table;
    private readonly TableSchema _schema;
    private readonly string _source;
    private readonly PgColumn[] _columns;

    public PostgresRowMapper(PgTable table, TableSchema schema, string source)
    {
        _table = table;
        _schema = schema;
        _source = source;
        _columns = schema.Columns.Select(c => table.Columns.First(p => p.Name == c.Name)).ToArray();
        RowIdIndex = Array.FindIndex(_columns, c => c.IsVirtual);
    }

    public int ColumnCount => _columns.Length;

    public PgTable Table => _table;

    /// <summary>The index of the virtual row-identity column of a table without a key, or -1.</summary>
    public int RowIdIndex { get; }

    public TableSchema Schema => _schema;

    public PgColumn Column(string name) => _columns.First(c => string.Equals(c.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>The column at <paramref name="index"/> in the schema's order.</summary>
    public PgColumn ColumnAt(int index) => _columns[index];

    /// <summary>
    /// Whether a column's value is selected as <c>::text</c> (and read back by <see cref="PostgresValues.Read"/>): a type
    /// Npgsql does not map, and <c>numeric</c>, which Npgsql reads only into decimal (no NaN, no 29+ digits).
    /// </summary>
    public static bool SelectedAsText(PgColumn column) => !column.IsNative || (column.BaseType == "numeric" && !column.IsArray);

    /// <summary>The select list: <c>"a", "b"::text, …</c> (types Npgsql does not map, and <c>numeric</c>, as text).</summary>
    public string SelectList(string? alias = null)
    {
        var text = new StringBuilder();
        foreach (var column in _columns)
        {
            if (text.Length > 0)
            {
                text.Append(", ");
            }

            text.Append(Selected(column, alias));
        }

        return text.ToString();
    }

    /// <summary>One column as <see cref="SelectList(string?)"/> selects it.</summary>
    private static string Selected(PgColumn column, string? alias) =>
        column.IsVirtual ? "NULL::text"
        : (alias is null ? "" : alias + ".") + PostgresSql.Quote(column.Name) + (SelectedAsText(column) ? "::text" : "");

    /// <summary>The key columns only, selected as <see cref="SelectList(string?)"/> selects them (read by <see cref="ReadKey"/>).</summary>
    public string KeySelectList() => string.Join(", ", _schema.PrimaryKey.Select(k => Selected(Column(k), null)));

    /// <summary>The key a <see cref="KeySelectList"/> put first in the row: the same values a full row's key has.</summary>
    public RecordKey ReadKey(NpgsqlDataReader reader)
    {
        var key = _keyColumns ??= _schema.PrimaryKey.Select(Column).ToArray();
        var values = new object?[key.Length];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = PostgresValues.Read(reader, i, key[i]);
        }

        return new RecordKey(values);
    }

    private PgColumn[]? _keyColumns;

    /// <summary>
    /// The rows of a list of keys, in the list's order: <c>SELECT cols{extra} FROM unnest($1::text[], …) WITH ORDINALITY
    /// AS k(k0, …, n) JOIN table t …</c>. The keys travel as text arrays (whatever their portable form, bound by
    /// <see cref="AddKeyParameters"/>) and are cast to each key column's declared type in SQL, so a uuid, a timestamp or
    /// a numeric key matches as the table stores it. <paramref name="keepMissing"/> keeps a row of NULLs for a key
    /// without a row (a LEFT JOIN); <c>k.k0</c>… are the keys as sent.
    /// </summary>
    public string RowsByKeySql(Func<IReadOnlyList<string>, string> extra, bool keepMissing)
    {
        var keyColumns = _schema.PrimaryKey.Select(Column).ToList();
        var names = keyColumns.Select((_, i) => "k" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
        var cast = keyColumns.Select((c, i) => c.BaseType == "bytea" && !c.IsArray ? $"decode(k.{names[i]}, 'base64')" : $"CAST(k.{names[i]} AS {c.CastType})").ToList();
        var join = string.Join(" AND ", keyColumns.Select((c, i) => $"t.{PostgresSql.Quote(c.Name)} = {cast[i]}"));
        var arrays = string.Join(", ", names.Select((_, i) => "$" + (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture) + "::text[]"));
        return $"SELECT {SelectList("t")}{extra(cast)} " +
            $"FROM unnest({arrays}) WITH ORDINALITY AS k({string.Join(", ", names)}, n) " +
            $"{(keepMissing ? "LEFT JOIN" : "JOIN")} {_table.QualifiedName} t ON {join} ORDER BY k.n";
    }

    /// <summary>Binds <paramref name="keys"/> as the text arrays <see cref="RowsByKeySql"/> reads (one per key column).</summary>
    public void AddKeyParameters(NpgsqlCommand command, IReadOnlyList<RecordKey> keys)
    {
        for (var i = 0; i < _schema.PrimaryKey.Count; i++)
        {
            var column = i;
            command.Parameters.Add(new NpgsqlParameter { Value = keys.Select(k => PortableValue.ToText(k.Values[column])).ToArray(), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text });
        }
    }

    /// <summary>The table's columns as stored (no casts), for a binary pass-through of a table whose columns are all native.</summary>
    public string StoredColumnList() => PostgresSql.ColumnList(_columns.Select(c => c.Name));

    /// <summary>
    /// PostgreSQL's own 64-bit digest of a row: <c>record_send(ROW(columns))</c>, the binary form of every column in schema
    /// order (type OIDs, lengths, values; text in the session's UTF-8), hashed as bytes by bytea's extended hash function
    /// (reached through <c>hash_record_extended</c>, PostgreSQL 14+; the per-type hashes it would use on the columns
    /// directly treat equal values alike, 1.5 and 1.50 for one, where this tells every byte apart). A row copied byte for
    /// byte into a table with the same column types has the same digest there, which is what lets a bulk load's ledger,
    /// built in the destination, be compared with the rows captures read later. Costs about a third of an MD5 of the same
    /// bytes.
    /// </summary>
    public string DigestSql(string? alias = null) => DigestSql(_columns.Select(c => c.IsVirtual ? null : c.Name), alias);

    /// <summary>The row digest over <paramref name="columns"/> in this order (null: a virtual column, digested as NULL text).</summary>
    public static string DigestSql(IEnumerable<string?> columns, string? alias) =>
        $"hash_record_extended(ROW(record_send(ROW({string.Join(", ", columns.Select(c => c is null ? "NULL::text" : (alias is null ? "" : alias + ".") + PostgresSql.Quote(c)))}))), 0)";

    /// <summary>The select list, with the row digest (<see cref="DigestSql"/>) as one more column when <paramref name="digest"/> is set.</summary>
    public string SelectList(bool digest) => digest ? SelectList() + ", " + DigestSql() : SelectList();

    /// <summary>The digest a <see cref="SelectList(bool)"/> with digest put after the columns, or null without it.</summary>
    public long? ReadDigest(NpgsqlDataReader reader) => reader.FieldCount > _columns.Length ? reader.GetInt64(_columns.Length) : null;

    /// <summary>The expression a key column is ordered and compared by (matching <see cref="KeyEncoding"/>'s order).</summary>
    public string KeyExpression(string column, string? alias = null)
    {
        var c = Column(column);
        var name = (alias is null ? "" : alias + ".") + PostgresSql.Quote(c.Name);
        if (!c.IsNative)
        {
            return $"({name}::text COLLATE \"C\")";
        }

        return c.BaseType is "text" or "varchar" or "bpchar" or "name" ? $"({name} COLLATE \"C\")" : name;
    }

    /// <summary><c>k1, k2</c> in key order, for ORDER BY.</summary>
    public string KeyOrder(string? alias = null) =>
        RowIdIndex >= 0 ? (alias is null ? "" : alias + ".") + "ctid" : string.Join(", ", _schema.PrimaryKey.Select(k => KeyExpression(k, alias)));

    /// <summary><c>(k1, k2) &gt; ($n, $n+1)</c>: rows after <paramref name="key"/> in key order; adds the parameters.</summary>
    public string KeyAfter(RecordKey key, NpgsqlCommand command, string comparison = ">")
    {
        var placeholders = new List<string>();
        for (var i = 0; i < _schema.PrimaryKey.Count; i++)
        {
            var column = Column(_schema.PrimaryKey[i]);
            command.Parameters.Add(new NpgsqlParameter { Value = PostgresValues.ToColumn(key.Values[i], column) ?? DBNull.Value });
            var placeholder = "$" + command.Parameters.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
            // A numeric key beyond decimal is sent as its text.
            placeholders.Add(!column.IsNative ? placeholder + "::text" : column.BaseType == "numeric" && !column.IsArray ? placeholder + "::numeric" : placeholder);
        }

        return $"({KeyOrder()}) {comparison} ({string.Join(", ", placeholders.Select((p, i) => KeyParameter(p, _schema.PrimaryKey[i])))})";
    }

    private string KeyParameter(string placeholder, string column)
    {
        var c = Column(column);
        return !c.IsNative || c.BaseType is "text" or "varchar" or "bpchar" or "name" ? $"({placeholder} COLLATE \"C\")" : placeholder;
    }

    public object?[] ReadValues(NpgsqlDataReader reader)
    {
        var values = new object?[_columns.Length];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = _columns[i].IsVirtual ? null : PostgresValues.Read(reader, i, _columns[i]);
        }

        return values;
    }

    public ChangeEvent Upsert(object?[] values, Position position, Instant? commitTime, long? digest = null, RecordKey? key = null)
    {
        var change = RowChanges.Upsert(_schema, _source, values, position, commitTime, key);
        return digest is null ? change : change with { SourceDigest = digest };
    }

    public ChangeEvent Delete(RecordKey key, Position position, Instant? commitTime) =>
        RowChanges.Delete(_schema, _source, key, position, commitTime);
}
