using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.State;

namespace DeltaSync.Core.Pipeline;

/// <summary>
/// A write the destination must make. Inserts and updates are both written as upserts (idempotent); the kind is the
/// ledger's knowledge of whether the record already exists, used for counting real writes.
/// </summary>
public enum WriteKind
{
    /// <summary>A record the destination does not have yet.</summary>
    Insert,
    /// <summary>A record the destination has, with different values.</summary>
    Update,
    /// <summary>Remove the record.</summary>
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
    Checkpoint Checkpoint)
{
    /// <summary>Delete every row of the destination table and tombstone the scope's ledger before the writes (TRUNCATE at the source).</summary>
    public bool TruncateFirst { get; init; }

    /// <summary>
    /// Whether <see cref="Checkpoint"/> is committed with the writes (the normal case). False for the parts of a batch
    /// that is being split to isolate a poison record: they commit rows and ledger only, still fenced by the checkpoint's
    /// epoch, and the batch's last unit commits the checkpoint once every part is durable.
    /// </summary>
    public bool CommitsCheckpoint { get; init; } = true;

    /// <summary>
    /// A deterministic key for this batch (<see cref="BatchIdentity"/>): the destination records it with the writes and
    /// skips a unit whose key it already holds, so re-sending an applied batch (a retry whose commit acknowledgement was
    /// lost, a replayed suffix) is a no-op. Null: no check.
    /// </summary>
    public string? IdempotencyKey { get; init; }

    /// <summary>
    /// The child tables that reference this one (<c>sync.relationships</c>): each delete of this unit is carried to the
    /// children's rows in the same transaction — deleted (with a tombstone in the child's ledger), their foreign key set
    /// to NULL, or, for <c>restrict</c>, the delete is refused as a permanent error while children remain.
    /// </summary>
    public IReadOnlyList<ChildRelation> Children { get; init; } = [];

    /// <summary>
    /// For a destination table several sources write: the new <see cref="Conflicts.RecordBase"/> of each merged record
    /// (per-field last writer, per-source values, existence, review holds), committed with the rows, ledger and
    /// checkpoint. Empty on the single-source path.
    /// </summary>
    public IReadOnlyList<RecordBaseWrite> RecordBases { get; init; } = [];

    /// <summary>
    /// For a destination table several sources write: other sources' ledger entries whose merge state this batch
    /// withdraws (a full merge withdrew their fast-merge eligibility, <see cref="MergedBatch.ForeignLedgerUpdates"/>);
    /// only the entries' merge state is written. Idempotent: every part of a split batch writes them.
    /// </summary>
    public IReadOnlyList<(LedgerScope Scope, LedgerEntry Entry)> ForeignLedgerUpdates { get; init; } = [];

    /// <summary>
    /// Work that must be durable before this unit's writes commit, running meanwhile: the conflict log of a merged
    /// batch, written to the state store while the destination writes the rows. The destination awaits it right before
    /// its <c>COMMIT</c> (every part of a split batch does; after the first it is done), so a crash can leave a log
    /// without its batch (the batch is read again and re-detects the same conflicts under the same ids) but never a
    /// batch without its log. Its failure rolls the unit back and reaches the caller as a
    /// <see cref="BeforeCommitException"/>. Null: nothing to wait for.
    /// </summary>
    public Func<CancellationToken, Task>? BeforeCommit { get; init; }
}

/// <summary>The <see cref="ApplyUnit.BeforeCommit"/> work failed; the unit was rolled back. Not the records' fault: it is neither retried nor isolated record by record.</summary>
public sealed class BeforeCommitException : Exception
{
    public BeforeCommitException()
    {
    }

    public BeforeCommitException(string message)
        : base(message)
    {
    }

    public BeforeCommitException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Runs <paramref name="unit"/>'s <see cref="ApplyUnit.BeforeCommit"/> work, if any, wrapping its failure.</summary>
    public static async Task AwaitAsync(ApplyUnit unit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(unit);
        if (unit.BeforeCommit is not { } work)
        {
            return;
        }

        try
        {
            await work(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not BeforeCommitException)
        {
            throw new BeforeCommitException($"what must be stored before '{unit.DestinationTable}' commits failed: {e.Message}", e);
        }
    }
}

/// <summary>A record's merge state to store at the destination (<see cref="Conflicts.RecordBaseCodec"/> text, UTF-8), keyed by destination table and key.</summary>
public readonly record struct RecordBaseWrite(RecordKey Key, byte[] Body);

/// <summary>
/// A table referencing a parent: <paramref name="ForeignKey"/> columns of <paramref name="ChildTable"/> (a destination
/// table) hold the parent's primary key, in key order.
/// </summary>
/// <param name="ChildScope">The child stream's ledger scope, where cascaded deletes leave tombstones.</param>
/// <param name="Children">The child's own children, reached by a cascade.</param>
public sealed record ChildRelation(
    string ChildTable,
    LedgerScope ChildScope,
    IReadOnlyList<string> ForeignKey,
    Config.DeleteAction OnDelete,
    IReadOnlyList<ChildRelation> Children);
