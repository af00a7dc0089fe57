using System.Globalization;
using System.Text;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>A SQLite file a test writes to and reads back: run SQL, create tables, dump a table with its value types.</summary>
internal sealed class SqliteTestDb
{
    public SqliteTestDb(string path)
    {
        Path = path;
    }

    public string Path { get; }

    public bool Exists => File.Exists(Path);

    /// <summary>Runs one or more statements; parameters are named <c>$name</c>.</summary>
    public int Execute(string sql, params (string Name, object? Value)[] parameters)
    {
        using var connection = Open();
        using var command = Command(connection, sql, parameters);
        return command.ExecuteNonQuery();
    }

    /// <summary>Runs <paramref name="work"/> in one transaction on one connection.</summary>
    public void Transaction(Action<Action<string, (string Name, object? Value)[]>> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        using var connection = Open();
        using var transaction = connection.BeginTransaction();
        work((sql, parameters) =>
        {
            using var command = Command(connection, sql, parameters);
            command.Transaction = transaction;
            command.ExecuteNonQuery();
        });
        transaction.Commit();
    }

    public object? Scalar(string sql, params (string Name, object? Value)[] parameters)
    {
        using var connection = Open();
        using var command = Command(connection, sql, parameters);
        var value = command.ExecuteScalar();
        return value is DBNull ? null : value;
    }

    public long Count(string table) => (long)Scalar($"SELECT count(*) FROM {Quote(table)}")!;

    public bool TableExists(string table) =>
        Scalar("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = $name", ("$name", table)) is 1L;

    /// <summary>The table's columns in declaration order.</summary>
    public IReadOnlyList<string> Columns(string table)
    {
        using var connection = Open();
        using var command = Command(connection, "SELECT name FROM pragma_table_info($table) ORDER BY cid", [("$table", table)]);
        using var reader = command.ExecuteReader();
        var columns = new List<string>();
        while (reader.Read())
        {
            columns.Add(reader.GetString(0));
        }

        return columns;
    }

    /// <summary>
    /// Every row of <paramref name="table"/> as one line <c>col=type:value | …</c>, ordered by <paramref name="key"/>:
    /// two tables dump equal exactly when they hold the same rows with the same values and SQLite storage classes.
    /// </summary>
    /// <param name="where">An optional filter, to compare part of a table.</param>
    public IReadOnlyList<string> Dump(string table, IReadOnlyList<string> columns, IReadOnlyList<string> key, string? where = null)
    {
        var select = string.Join(", ", columns.Select(c => $"{Quote(c)}, typeof({Quote(c)})"));
        var order = string.Join(", ", key.Select(Quote));
        using var connection = Open();
        using var command = Command(connection, $"SELECT {select} FROM {Quote(table)}{(where is null ? "" : " WHERE " + where)} ORDER BY {order}", []);
        using var reader = command.ExecuteReader();
        var rows = new List<string>();
        while (reader.Read())
        {
            var line = new StringBuilder();
            for (var i = 0; i < columns.Count; i++)
            {
                if (i > 0)
                {
                    line.Append(" | ");
                }

                line.Append(columns[i]).Append('=').Append(reader.GetString((2 * i) + 1)).Append(':').Append(Format(reader.GetValue(2 * i)));
            }

            rows.Add(line.ToString());
        }

        return rows;
    }

    public static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static string Format(object value) => value switch
    {
        DBNull => "NULL",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        string s => "'" + s + "'",
        byte[] b => "x'" + Convert.ToHexStringLower(b) + "'",
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path, Pooling = false, DefaultTimeout = 30 }.ToString());
        connection.Open();
        // The test's own writes need no durability (nothing crashes for real), and skipping fsync keeps the suite fast.
        using var fast = connection.CreateCommand();
        fast.CommandText = "PRAGMA synchronous = OFF";
        fast.ExecuteNonQuery();
        return connection;
    }

    private static SqliteCommand Command(SqliteConnection connection, string sql, (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return command;
    }
}
