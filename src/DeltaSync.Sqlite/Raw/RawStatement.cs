using System.Text;
using SQLitePCL;

namespace DeltaSync.Sqlite.Raw;

/// <summary>
/// A prepared statement stepped on SQLite's own API: values stay in their native form (long, double, string, byte[])
/// and no ADO.NET reader sits on the hot path.
/// </summary>
internal sealed class RawStatement : IDisposable
{
    private readonly sqlite3 _db;
    private readonly sqlite3_stmt _stmt;

    public RawStatement(sqlite3 db, string sql)
    {
        _db = db;
        var rc = raw.sqlite3_prepare_v2(db, sql, out _stmt);
        if (rc != raw.SQLITE_OK)
        {
            throw new SqliteRawException(rc, raw.sqlite3_errmsg(db).utf8_to_string(), sql);
        }
    }

    public int ColumnCount => raw.sqlite3_column_count(_stmt);

    public void Bind(int index, object? value)
    {
        var rc = value switch
        {
            null => raw.sqlite3_bind_null(_stmt, index),
            long l => raw.sqlite3_bind_int64(_stmt, index, l),
            int i => raw.sqlite3_bind_int64(_stmt, index, i),
            short i => raw.sqlite3_bind_int64(_stmt, index, i),
            bool b => raw.sqlite3_bind_int64(_stmt, index, b ? 1 : 0),
            // SQLite stores a NaN REAL as NULL: it is kept as the text NaN instead (±Infinity are REALs).
            double d when double.IsNaN(d) => raw.sqlite3_bind_text(_stmt, index, "NaN"),
            float f when float.IsNaN(f) => raw.sqlite3_bind_text(_stmt, index, "NaN"),
            double d => raw.sqlite3_bind_double(_stmt, index, d),
            float f => raw.sqlite3_bind_double(_stmt, index, f),
            string s => raw.sqlite3_bind_text(_stmt, index, s),
            byte[] bytes => raw.sqlite3_bind_blob(_stmt, index, bytes),
            // Times, identifiers, decimals and arrays from other systems: their portable text (ISO-8601, JSON…).
            _ => raw.sqlite3_bind_text(_stmt, index, Core.Model.PortableValue.ToText(value) ?? ""),
        };
        Check(rc);
    }

    /// <summary>Binds <paramref name="utf8"/> as TEXT (already UTF-8: no string in between).</summary>
    public void BindUtf8Text(int index, ReadOnlySpan<byte> utf8) => Check(raw.sqlite3_bind_text(_stmt, index, utf8));

    /// <summary>A TEXT (or BLOB) column's bytes as stored: UTF-8 for text.</summary>
    public byte[] GetUtf8(int column) => raw.sqlite3_column_blob(_stmt, column).ToArray();

    /// <summary>Steps once; true when a row is available.</summary>
    public bool Step()
    {
        var rc = raw.sqlite3_step(_stmt);
        if (rc == raw.SQLITE_ROW)
        {
            return true;
        }

        if (rc == raw.SQLITE_DONE)
        {
            return false;
        }

        throw new SqliteRawException(rc, raw.sqlite3_errmsg(_db).utf8_to_string(), null);
    }

    /// <summary>Runs a statement that returns no rows, then resets it for the next bindings.</summary>
    public void Execute()
    {
        try
        {
            while (Step())
            {
            }
        }
        finally
        {
            raw.sqlite3_reset(_stmt);
        }
    }

    public void Reset()
    {
        raw.sqlite3_reset(_stmt);
        raw.sqlite3_clear_bindings(_stmt);
    }

    public bool IsNull(int column) => raw.sqlite3_column_type(_stmt, column) == raw.SQLITE_NULL;

    public string ColumnName(int column) => raw.sqlite3_column_name(_stmt, column).utf8_to_string();

    public long GetInt64(int column) => raw.sqlite3_column_int64(_stmt, column);

    public string GetText(int column) => Encoding.UTF8.GetString(raw.sqlite3_column_blob(_stmt, column));

    public object? GetValue(int column)
    {
        switch (raw.sqlite3_column_type(_stmt, column))
        {
            case raw.SQLITE_INTEGER:
                return raw.sqlite3_column_int64(_stmt, column);
            case raw.SQLITE_FLOAT:
                return raw.sqlite3_column_double(_stmt, column);
            case raw.SQLITE_TEXT:
                return Encoding.UTF8.GetString(raw.sqlite3_column_blob(_stmt, column));
            case raw.SQLITE_BLOB:
                return raw.sqlite3_column_blob(_stmt, column).ToArray();
            default:
                return null;
        }
    }

    /// <summary>Reads columns [0, count) into a new array.</summary>
    public object?[] ReadRow(int count)
    {
        var row = new object?[count];
        for (var i = 0; i < count; i++)
        {
            row[i] = GetValue(i);
        }

        return row;
    }

    public void Dispose() => _stmt.Dispose();

    private void Check(int rc)
    {
        if (rc != raw.SQLITE_OK)
        {
            throw new SqliteRawException(rc, raw.sqlite3_errmsg(_db).utf8_to_string(), null);
        }
    }
}

/// <summary>An error reported by SQLite through the raw API.</summary>
internal sealed class SqliteRawException : Exception
{
    public SqliteRawException(int code, string message, string? sql)
        : base(sql is null ? $"SQLite error {code}: {message}" : $"SQLite error {code}: {message} (in: {sql})")
    {
        Code = code;
    }

    public SqliteRawException()
    {
    }

    public SqliteRawException(string message)
        : base(message)
    {
    }

    public SqliteRawException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public int Code { get; }

}
