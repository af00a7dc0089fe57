namespace DeltaSync.Core.Model;

/// <summary>The kind of value a column holds, independent of the system it lives in.</summary>
public enum DataKind
{
    Integer,
    Real,
    Numeric,
    Text,
    Blob,
    Boolean,
    Timestamp,
    Date,
    Json,
    Uuid,
}

/// <summary>One column of a table as a source or destination describes it.</summary>
/// <param name="Name">The column name as the system spells it.</param>
/// <param name="DeclaredType">The type name declared in the system's catalog (kept so same-system copies are faithful).</param>
/// <param name="Kind">The portable kind used to map types across systems.</param>
/// <param name="IsNullable">Whether NULL is allowed.</param>
/// <param name="PrimaryKeyOrdinal">1-based position in the primary key, 0 when not part of it.</param>
/// <param name="DefaultSql">The column's default as the source's catalog spells it (SQL text), when it has one; a
/// column added at the destination gets it too, so rows synced before the column existed get the same value.</param>
public sealed record ColumnSchema(string Name, string DeclaredType, DataKind Kind, bool IsNullable, int PrimaryKeyOrdinal, string? DefaultSql = null)
{
    public bool IsPrimaryKey => PrimaryKeyOrdinal > 0;
}
