using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Sqlite.Raw;
using NodaTime;

namespace DeltaSync.Sqlite.Source;

/// <summary>Turns rows stepped from a table's SELECT (all columns, in schema order, first) into change events.</summary>
internal sealed class SqliteRowMapper
{
    private readonly TableSchema _schema;
    private readonly string _source;

    public SqliteRowMapper(TableSchema schema, string source)
    {
        _schema = schema;
        _source = source;
    }

    public int ColumnCount => _schema.Columns.Count;

    /// <summary><c>SELECT "c1", "c2"… [, extra] FROM "t"</c>.</summary>
    public string SelectFrom(string? extra = null) =>
        $"SELECT {SqliteSql.ColumnList(_schema.Columns.Select(c => c.Name))}{(extra is null ? "" : ", " + extra)} FROM {SqliteSql.Quote(_schema.Name)}";

    /// <summary>
    /// Streams the table in key order (byte order of the key encoding), after <paramref name="after"/> when given:
    /// the shape of every snapshot and of the resumption of an interrupted one.
    /// </summary>
    public RawStatement OpenInKeyOrder(Microsoft.Data.Sqlite.SqliteConnection connection, RecordKey? after, string? extra = null)
    {
        var key = _schema.PrimaryKey;
        var sql = SelectFrom(extra) + (after is null ? "" : " WHERE " + SqliteSql.KeyAfter(key, 1)) + " ORDER BY " + SqliteSql.KeyOrder(key);
        var statement = new RawStatement(connection.Handle!, sql);
        for (var i = 0; after is not null && i < after.Values.Count; i++)
        {
            statement.Bind(i + 1, after.Values[i]);
        }

        return statement;
    }

    public object?[] ReadValues(RawStatement statement) => statement.ReadRow(_schema.Columns.Count);

    public ChangeEvent Upsert(object?[] values, Position position, Instant? commitTime) =>
        RowChanges.Upsert(_schema, _source, values, position, commitTime);

    public ChangeEvent Delete(RecordKey key, Position position, Instant? commitTime) =>
        RowChanges.Delete(_schema, _source, key, position, commitTime);

    public DeadLetter DeadLetter(string stream, object?[] values, string reason, Position position, Instant now) =>
        RowChanges.DeadLetter(_schema, stream, values, reason, position, now);
}
