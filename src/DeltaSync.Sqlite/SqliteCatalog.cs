using DeltaSync.Core.Config;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Sqlite;

/// <summary>Reads table shapes from SQLite's catalog and maps declared types to portable kinds.</summary>
internal static class SqliteCatalog
{
    public static bool TableExists(SqliteConnection connection, string table)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT 1 FROM sqlite_schema WHERE type IN ('table', 'view') AND name = $name COLLATE NOCASE";
        command.Parameters.AddWithValue("$name", table);
        return command.ExecuteScalar() is not null;
    }

    /// <summary>The table's columns; null when the table does not exist.</summary>
    public static IReadOnlyList<ColumnSchema>? Columns(SqliteConnection connection, string table)
    {
        if (!TableExists(connection, table))
        {
            return null;
        }

        using var command = connection.CreateCommand();
        command.CommandText = "SELECT name, type, \"notnull\", pk, dflt_value FROM pragma_table_info($table)";
        command.Parameters.AddWithValue("$table", table);
        using var reader = command.ExecuteReader();
        var columns = new List<ColumnSchema>();
        while (reader.Read())
        {
            var declared = reader.GetString(1);
            columns.Add(new ColumnSchema(reader.GetString(0), declared, KindOf(declared), reader.GetInt64(2) == 0, (int)reader.GetInt64(3), reader.IsDBNull(4) ? null : reader.GetString(4)));
        }

        return columns;
    }

    /// <summary>Describes a table, with the key from <paramref name="options"/> when given, else from the catalog.</summary>
    public static TableSchema Describe(SqliteConnection connection, TableOptions options, string role)
    {
        var columns = Columns(connection, options.Name)
            ?? throw new SyncException(ErrorClass.Fatal, $"table '{options.Name}' does not exist in the {role} database");
        List<string> key;
        if (options.PrimaryKey is { Count: > 0 } configured)
        {
            var missing = configured.Where(k => !columns.Any(c => string.Equals(c.Name, k, StringComparison.OrdinalIgnoreCase))).ToList();
            if (missing.Count > 0)
            {
                throw new SyncException(ErrorClass.Fatal, $"table '{options.Name}': primary_key column(s) {string.Join(", ", missing)} do not exist");
            }

            key = configured.Select(k => columns.First(c => string.Equals(c.Name, k, StringComparison.OrdinalIgnoreCase)).Name).ToList();
            columns = columns.Select(c => c with { PrimaryKeyOrdinal = IndexIn(key, c.Name) }).ToList();
        }
        else
        {
            key = columns.Where(c => c.IsPrimaryKey).OrderBy(c => c.PrimaryKeyOrdinal).Select(c => c.Name).ToList();
            if (key.Count == 0)
            {
                throw new SyncException(ErrorClass.Fatal, $"table '{options.Name}' has no primary key; name one with 'primary_key' in its table entry");
            }
        }

        var actualName = ActualName(connection, options.Name) ?? options.Name;
        return new TableSchema(actualName, columns, key) { Dialect = "sqlite" };
    }

    private static int IndexIn(IReadOnlyList<string> key, string column)
    {
        for (var i = 0; i < key.Count; i++)
        {
            if (string.Equals(key[i], column, StringComparison.OrdinalIgnoreCase))
            {
                return i + 1;
            }
        }

        return 0;
    }

    private static string? ActualName(SqliteConnection connection, string table)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND name = $name COLLATE NOCASE";
        command.Parameters.AddWithValue("$name", table);
        return command.ExecuteScalar() as string;
    }

    /// <summary>SQLite's affinity rules (section 3.1 of "Datatypes In SQLite"), refined by common type names.</summary>
    public static DataKind KindOf(string declared)
    {
        var t = declared.ToUpperInvariant();
        if (t.Contains("BOOL", StringComparison.Ordinal))
        {
            return DataKind.Boolean;
        }

        if (t.Contains("TIMESTAMP", StringComparison.Ordinal) || t.Contains("DATETIME", StringComparison.Ordinal))
        {
            return DataKind.Timestamp;
        }

        if (t == "DATE")
        {
            return DataKind.Date;
        }

        if (t.Contains("JSON", StringComparison.Ordinal))
        {
            return DataKind.Json;
        }

        if (t.Contains("UUID", StringComparison.Ordinal) || t.Contains("GUID", StringComparison.Ordinal))
        {
            return DataKind.Uuid;
        }

        if (t.Contains("INT", StringComparison.Ordinal))
        {
            return DataKind.Integer;
        }

        if (t.Contains("CHAR", StringComparison.Ordinal) || t.Contains("CLOB", StringComparison.Ordinal) || t.Contains("TEXT", StringComparison.Ordinal))
        {
            return DataKind.Text;
        }

        if (t.Length == 0 || t.Contains("BLOB", StringComparison.Ordinal))
        {
            return DataKind.Blob;
        }

        if (t.Contains("REAL", StringComparison.Ordinal) || t.Contains("FLOA", StringComparison.Ordinal) || t.Contains("DOUB", StringComparison.Ordinal))
        {
            return DataKind.Real;
        }

        return DataKind.Numeric;
    }
}
