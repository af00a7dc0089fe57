namespace DeltaSync.Core.Model;

/// <summary>What happened to one record at the source.</summary>
public enum ChangeOperation
{
    /// <summary>The record was created.</summary>
    Insert,
    /// <summary>The record changed.</summary>
    Update,
    /// <summary>The record was removed (hard delete or a propagated soft delete).</summary>
    Delete,
    /// <summary>The record exists now with these values; whether it is new is not known (snapshots, cursors).</summary>
    Upsert,
}
