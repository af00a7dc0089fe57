using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.State;

namespace DeltaSync.Core.Pipeline;

/// <summary>A write the destination must make.</summary>
public enum WriteKind
{
    /// <summary>Insert the row, or replace it when the key exists.</summary>
    Upsert,
    /// <summary>Remove the row when it exists.</summary>
    Delete,
}

/// <summary>One row write, in table-schema column order.</summary>
public readonly record struct RowWrite(WriteKind Kind, RecordKey Key, object?[]? Values);

/// <summary>
/// Everything one batch commits at the destination, in one transaction: the row writes, the ledger entries that
/// record them, and the checkpoint that covers them (invariant 3: a checkpoint is never ahead of the data).
/// </summary>
public sealed record ApplyUnit(
    TableSchema Schema,
    string DestinationTable,
    LedgerScope Scope,
    IReadOnlyList<RowWrite> Writes,
    IReadOnlyList<LedgerEntry> LedgerUpdates,
    Checkpoint Checkpoint);
