using DeltaSync.Core.Config;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using Npgsql;

namespace DeltaSync.Postgres;

/// <summary>A PostgreSQL table as the catalog describes it: where it is, its portable schema and each column's type.</summary>
/// <param name="Schema">The namespace (schema) the table lives in.</param>
/// <param name="Name">The table's own name, exactly as the catalog spells it.</param>
/// <param name="Columns">Every column, in attribute order; the portable schema's columns are these.</param>
/// <param name="ReplicaIdentityFull">Whether the table logs whole old rows (REPLICA IDENTITY FULL).</param>
internal sealed record PgTable(string Schema, string Name, IReadOnlyList<PgColumn> Columns, bool ReplicaIdentityFull)
{
    public string QualifiedName => PostgresSql.Qualified(Schema, Name);
}

/// <summary>One column: its name, its type as <c>format_type</c> spells it, and the base type name (element type for arrays).</summary>
/// <param name="DefaultSql">The column's default expression; null for a generated column (its expression is no default).</param>
/// <param name="IsVirtual">Not a column of the source table: the row identity DeltaSync gives rows of a table without a
/// key (<see cref="PostgresCatalog.RowIdColumn"/>), filled by the log capture.</param>
/// <param name="IsGenerated">A <c>GENERATED ALWAYS AS (…) STORED</c> column: readable, but only PostgreSQL writes it.</param>
/// <param name="UnmodifiedTypeName">The type without its modifier (<c>pg_catalog."varchar"</c> for <c>character
/// varying(3)</c>), when it has one; see <see cref="CastType"/>.</param>
internal sealed record PgColumn(
    string Name,
    string TypeName,
    string BaseType,
    bool IsArray,
    bool NotNull,
    int KeyOrdinal,
    string? DefaultSql,
    bool IsVirtual = false,
    bool IsGenerated = false,
    string? UnmodifiedTypeName = null)
{
    /// <summary>Whether Npgsql reads and writes this type natively; other types travel as text and are cast back.</summary>
    public bool IsNative => PostgresTypes.IsNative(BaseType);

    /// <summary>
    /// The type a value is cast to on its way into this column: without the length or precision, because an explicit
    /// cast to <c>varchar(3)</c>, <c>char(3)</c> or <c>bit(4)</c> cuts the value to fit (and to <c>numeric(10,2)</c>
    /// rounds it), where the assignment into the column refuses a value that does not fit.
    /// </summary>
    public string CastType => UnmodifiedTypeName ?? TypeName;

    public DataKind Kind => IsArray ? DataKind.Json : PostgresTypes.KindOf(BaseType);
}

/// <summary>Reads table shapes from <c>pg_catalog</c>.</summary>
internal static class PostgresCatalog
{
    /// <summary>
    /// The key DeltaSync adds to a table without one when it is read from the log: where each row was inserted
    /// (<c>w:&lt;commit LSN&gt;:&lt;n&gt;</c>, or <c>s:&lt;snapshot LSN&gt;:&lt;n&gt;</c> for rows copied by the snapshot).
    /// Deterministic, so a replayed insert is recognised and the row lands exactly once.
    /// </summary>
    public const string RowIdColumn = "_deltasync_row";

    private const string ColumnsSql = """
        SELECT a.attname,
               format_type(a.atttypid, a.atttypmod),
               CASE WHEN t.typcategory = 'A' THEN et.typname ELSE t.typname END,
               t.typcategory = 'A',
               a.attnotnull,
               -- indkey is an int2vector: a zero-based array
               coalesce(array_position(i.indkey::int2[], a.attnum) - array_lower(i.indkey::int2[], 1) + 1, 0),
               -- a generated column's expression is stored as its default: it is not one
               CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
               a.attgenerated <> '',
               -- format_type without a modifier still means one for a few types (character is char(1), bit is bit(1)):
               -- the catalog's own name does not
               CASE WHEN a.atttypmod = -1 THEN NULL
                    WHEN t.typnamespace = 'pg_catalog'::regnamespace
                    THEN 'pg_catalog.' || quote_ident(CASE WHEN t.typcategory = 'A' THEN et.typname ELSE t.typname END) || CASE WHEN t.typcategory = 'A' THEN '[]' ELSE '' END
                    ELSE format_type(a.atttypid, NULL) END
        FROM pg_attribute a
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
        LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """;

    /// <summary>The table's oid, schema and name; null when it does not exist (search path first, then case-insensitively).</summary>
    public static async Task<(uint Oid, string Schema, string Name, char ReplicaIdentity)?> FindAsync(NpgsqlConnection connection, string configuredName, CancellationToken cancellationToken)
    {
        var (schema, table) = PostgresSql.SplitName(configuredName);
        const string sql = """
            SELECT c.oid, n.nspname, c.relname, c.relreplident
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
              AND (c.relname = $2 OR lower(c.relname) = lower($2))
              AND (CASE WHEN $1::text IS NULL THEN n.nspname = ANY (current_schemas(false)) ELSE (n.nspname = $1 OR lower(n.nspname) = lower($1)) END)
            ORDER BY (c.relname = $2) DESC, array_position(current_schemas(false), n.nspname::text) NULLS LAST
            LIMIT 1
            """;
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)schema ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter { Value = table });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        return (reader.GetFieldValue<uint>(0), reader.GetString(1), reader.GetString(2), reader.GetChar(3));
    }

    /// <summary>The table's columns; null when it does not exist.</summary>
    public static async Task<PgTable?> ReadAsync(NpgsqlConnection connection, string configuredName, CancellationToken cancellationToken)
    {
        var found = await FindAsync(connection, configuredName, cancellationToken).ConfigureAwait(false);
        if (found is not { } table)
        {
            return null;
        }

        var columns = new List<PgColumn>();
        await using (var command = new NpgsqlCommand(ColumnsSql, connection))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = table.Oid, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Oid });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                columns.Add(new PgColumn(
                    reader.GetString(0),
                    reader.GetString(1),
                    reader.GetString(2),
                    reader.GetBoolean(3),
                    reader.GetBoolean(4),
                    reader.GetInt32(5),
                    reader.IsDBNull(6) ? null : reader.GetString(6),
                    IsGenerated: reader.GetBoolean(7),
                    UnmodifiedTypeName: reader.IsDBNull(8) ? null : reader.GetString(8)));
            }
        }

        return new PgTable(table.Schema, table.Name, columns, table.ReplicaIdentity == 'f');
    }

    /// <summary>Describes a table for syncing: the key from <paramref name="options"/> when given, else the primary key.</summary>
    public static async Task<(PgTable Table, TableSchema Schema)> DescribeAsync(NpgsqlConnection connection, TableOptions options, string role, CancellationToken cancellationToken)
    {
        var table = await ReadAsync(connection, options.Name, cancellationToken).ConfigureAwait(false)
            ?? throw new SyncException(ErrorClass.Fatal, $"table '{options.Name}' does not exist in the {role} database (or this user cannot see it)");
        List<string> key;
        if (options.PrimaryKey is { Count: > 0 } configured)
        {
            var missing = configured.Where(k => !table.Columns.Any(c => string.Equals(c.Name, k, StringComparison.OrdinalIgnoreCase))).ToList();
            if (missing.Count > 0)
            {
                throw new SyncException(ErrorClass.Fatal, $"table '{options.Name}': primary_key column(s) {string.Join(", ", missing)} do not exist");
            }

            key = configured.Select(k => table.Columns.First(c => string.Equals(c.Name, k, StringComparison.OrdinalIgnoreCase)).Name).ToList();
            table = table with { Columns = table.Columns.Select(c => c with { KeyOrdinal = key.IndexOf(c.Name) + 1 }).ToList() };
        }
        else
        {
            key = table.Columns.Where(c => c.KeyOrdinal > 0).OrderBy(c => c.KeyOrdinal).Select(c => c.Name).ToList();
            if (key.Count == 0 && options.CdcMethod == CdcMethod.Changelog)
            {
                // Read from the log, an insert-only table needs no key of its own: each row is identified by where it was inserted.
                table = table with { Columns = [.. table.Columns, new PgColumn(RowIdColumn, "text", "text", IsArray: false, NotNull: true, KeyOrdinal: 1, DefaultSql: null, IsVirtual: true)] };
                key = [RowIdColumn];
            }
            else if (key.Count == 0)
            {
                throw new SyncException(ErrorClass.Fatal, $"table '{options.Name}' has no primary key; name one with 'primary_key' in its table entry");
            }
        }

        return (table, ToSchema(table, key));
    }

    public static TableSchema ToSchema(PgTable table, IReadOnlyList<string> key) =>
        new(
            table.Name,
            table.Columns.Select(c => new ColumnSchema(c.Name, c.TypeName, c.Kind, !c.NotNull, c.KeyOrdinal, c.DefaultSql)).ToList(),
            key)
        {
            Dialect = "postgresql",
            SourceTable = table.QualifiedName,
        };
}
