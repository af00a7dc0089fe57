using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Sqlite.Destination;

/// <summary>Creates and evolves destination tables and builds their write statements.</summary>
internal static partial class SqliteTableWriter
{
    /// <summary>
    /// Creates the table from the source schema (declared types kept, so SQLite applies the same affinities and the
    /// stored values equal the source's) or adds the columns the source gained. The key must be unique at the destination.
    /// (SQLite does not enforce declared lengths or precisions, so a type the source widened needs no change here.)
    /// </summary>
    public static TableEvolution Prepare(SqliteConnection connection, string table, TableSchema source)
    {
        var existing = SqliteCatalog.Columns(connection, table);
        if (existing is null)
        {
            var columns = source.Columns.Select(c => $"{SqliteSql.Quote(c.Name)} {DeclaredType(c, source)}{(c.IsNullable || c.IsPrimaryKey ? "" : " NOT NULL")}{Default(c, source)}");
            var sql = $"CREATE TABLE {SqliteSql.Quote(table)} ({string.Join(", ", columns)}, PRIMARY KEY ({SqliteSql.ColumnList(source.PrimaryKey)}))";
            SqliteConnectionFactory.Execute(connection, sql);
            return TableEvolution.None with { Notes = PrecisionNotes(source.Columns, source) };
        }

        var added = new List<string>();
        foreach (var column in source.Columns.Where(c => !existing.Any(e => string.Equals(e.Name, c.Name, StringComparison.OrdinalIgnoreCase))))
        {
            var add = $"ALTER TABLE {SqliteSql.Quote(table)} ADD COLUMN {SqliteSql.Quote(column.Name)} {DeclaredType(column, source)}";
            try
            {
                SqliteConnectionFactory.Execute(connection, add + Default(column, source));
            }
            catch (SqliteException) when (column.DefaultSql is not null)
            {
                // SQLite refuses non-constant defaults (CURRENT_TIMESTAMP) on ALTER TABLE; the re-read fills the values.
                SqliteConnectionFactory.Execute(connection, add);
            }

            added.Add($"column '{column.Name}' added ({DeclaredType(column, source)})");
        }

        if (!HasUniqueKey(connection, table, source.PrimaryKey))
        {
            throw new SyncException(
                ErrorClass.Fatal,
                $"destination table '{table}' has no primary key or unique index on ({string.Join(", ", source.PrimaryKey)}); upserts need one. Add it, or let DeltaSync create the table.");
        }

        var notes = PrecisionNotes(source.Columns.Where(c => !existing.Any(e => string.Equals(e.Name, c.Name, StringComparison.OrdinalIgnoreCase))), source);
        return added.Count == 0 ? TableEvolution.None : new TableEvolution(added, []) { Notes = notes };
    }

    /// <summary>
    /// Created NUMERIC columns that can hold more digits at the source than SQLite keeps: its NUMERIC affinity stores a
    /// number as an INTEGER or a REAL (about 15 significant digits), so such values are rounded. Said once, when the
    /// column is created, so that nobody learns it from a wrong total.
    /// </summary>
    private static List<string> PrecisionNotes(IEnumerable<ColumnSchema> created, TableSchema source)
    {
        var notes = new List<string>();
        if (IsSqlite(source))
        {
            return notes;
        }

        foreach (var column in created.Where(c => c.Kind == DataKind.Numeric))
        {
            var precision = Precision().Match(column.DeclaredType);
            if (!precision.Success || int.Parse(precision.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) > ExactDigits)
            {
                notes.Add($"column '{column.Name}' ({column.DeclaredType}) is kept in a SQLite NUMERIC column, which holds about {ExactDigits} significant digits: values with more are rounded there (NaN is kept as text)");
            }
        }

        return notes;
    }

    /// <summary>Decimal digits a REAL round-trips exactly (DBL_DIG).</summary>
    private const int ExactDigits = 15;

    [System.Text.RegularExpressions.GeneratedRegex(@"\(\s*(\d+)")]
    private static partial System.Text.RegularExpressions.Regex Precision();

    public static string UpsertSql(string table, TableSchema schema)
    {
        var columns = schema.Columns.Select(c => c.Name).ToList();
        var parameters = string.Join(", ", columns.Select((_, i) => $"?{i + 1}"));
        var nonKey = columns.Where(c => !schema.PrimaryKey.Contains(c, StringComparer.OrdinalIgnoreCase)).ToList();
        var action = nonKey.Count == 0
            ? "DO NOTHING"
            : "DO UPDATE SET " + string.Join(", ", nonKey.Select(c => $"{SqliteSql.Quote(c)} = excluded.{SqliteSql.Quote(c)}"));
        return $"INSERT INTO {SqliteSql.Quote(table)} ({SqliteSql.ColumnList(columns)}) VALUES ({parameters}) ON CONFLICT ({SqliteSql.ColumnList(schema.PrimaryKey)}) {action}";
    }

    public static string DeleteSql(string table, TableSchema schema) =>
        $"DELETE FROM {SqliteSql.Quote(table)} WHERE " + string.Join(" AND ", schema.PrimaryKey.Select((k, i) => $"{SqliteSql.Quote(k)} = ?{i + 1}"));

    /// <summary>
    /// The source's default, copied as schema text from a SQLite source's catalog (DDL defaults take no parameters).
    /// Another system's default is its own SQL dialect: rows carry their values anyway, so none is copied.
    /// </summary>
    private static string Default(ColumnSchema column, TableSchema source) =>
        IsSqlite(source) && column.DefaultSql is { Length: > 0 } sql ? " DEFAULT " + sql : "";

    /// <summary>A SQLite source's declared type as is; another system's column by its portable kind.</summary>
    private static string DeclaredType(ColumnSchema column, TableSchema source)
    {
        if (IsSqlite(source))
        {
            return column.DeclaredType;
        }

        return column.Kind switch
        {
            DataKind.Integer => "INTEGER",
            DataKind.Real => "REAL",
            DataKind.Numeric => "NUMERIC",
            DataKind.Boolean => "BOOLEAN",
            DataKind.Timestamp => "TIMESTAMP",
            DataKind.Date => "DATE",
            DataKind.Json => "JSON",
            DataKind.Uuid => "UUID",
            DataKind.Blob => "BLOB",
            _ => "TEXT",
        };
    }

    private static bool IsSqlite(TableSchema source) => source.Dialect is "" or "sqlite";

    private static bool HasUniqueKey(SqliteConnection connection, string table, IReadOnlyList<string> key)
    {
        var wanted = key.Select(k => k.ToUpperInvariant()).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var columns = SqliteCatalog.Columns(connection, table)!;
        var pk = columns.Where(c => c.IsPrimaryKey).Select(c => c.Name.ToUpperInvariant()).OrderBy(k => k, StringComparer.Ordinal).ToList();
        if (pk.SequenceEqual(wanted))
        {
            return true;
        }

        using var command = connection.CreateCommand();
        command.CommandText = "SELECT il.name FROM pragma_index_list($table) AS il WHERE il.\"unique\" = 1";
        command.Parameters.AddWithValue("$table", table);
        var indexes = new List<string>();
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                indexes.Add(reader.GetString(0));
            }
        }

        foreach (var index in indexes)
        {
            using var info = connection.CreateCommand();
            info.CommandText = "SELECT name FROM pragma_index_info($index)";
            info.Parameters.AddWithValue("$index", index);
            var names = new List<string>();
            using var reader = info.ExecuteReader();
            while (reader.Read())
            {
                names.Add(reader.IsDBNull(0) ? "" : reader.GetString(0).ToUpperInvariant());
            }

            if (names.OrderBy(n => n, StringComparer.Ordinal).SequenceEqual(wanted))
            {
                return true;
            }
        }

        return false;
    }
}
