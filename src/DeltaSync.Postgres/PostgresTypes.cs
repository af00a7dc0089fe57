using DeltaSync.Core.Model;

namespace DeltaSync.Postgres;

/// <summary>Which PostgreSQL types travel natively, how they map to portable kinds, and what a foreign column becomes here.</summary>
internal static class PostgresTypes
{
    private static readonly HashSet<string> Native = new(StringComparer.Ordinal)
    {
        "int2", "int4", "int8", "float4", "float8", "numeric", "bool", "text", "varchar", "bpchar", "name",
        "bytea", "timestamptz", "timestamp", "date", "time", "uuid", "json", "jsonb",
    };

    public static bool IsNative(string baseType) => Native.Contains(baseType);

    public static DataKind KindOf(string baseType) => baseType switch
    {
        "int2" or "int4" or "int8" or "oid" => DataKind.Integer,
        "float4" or "float8" => DataKind.Real,
        "numeric" or "money" => DataKind.Numeric,
        "bool" => DataKind.Boolean,
        "timestamptz" or "timestamp" => DataKind.Timestamp,
        "date" => DataKind.Date,
        "json" or "jsonb" => DataKind.Json,
        "uuid" => DataKind.Uuid,
        "bytea" => DataKind.Blob,
        _ => DataKind.Text,
    };

    /// <summary>
    /// The PostgreSQL type for a column coming from another system: the source's own declaration when it is a
    /// PostgreSQL type, else the type for its portable kind (SQLite's <c>INTEGER</c> becomes <c>bigint</c>, and so on).
    /// </summary>
    public static string ForColumn(ColumnSchema column, bool fromPostgres)
    {
        ArgumentNullException.ThrowIfNull(column);
        if (fromPostgres)
        {
            return column.DeclaredType;
        }

        return column.Kind switch
        {
            DataKind.Integer => "bigint",
            DataKind.Real => "double precision",
            DataKind.Numeric => "numeric",
            DataKind.Boolean => "boolean",
            DataKind.Timestamp => "timestamp with time zone",
            DataKind.Date => "date",
            DataKind.Json => "jsonb",
            DataKind.Uuid => "uuid",
            // A SQLite column declared without a type holds numbers and text as they are (BLOB affinity converts
            // nothing): as bytea, 42 would arrive as the bytes of "42". Text keeps every value readable.
            DataKind.Blob when column.DeclaredType.Length == 0 => "text",
            DataKind.Blob => "bytea",
            _ => "text",
        };
    }
}
