using DeltaSync.Core.Model;
using DeltaSync.Core.State;
using NodaTime;

namespace DeltaSync.Core.Connectors;

/// <summary>
/// An initial load (or full refresh) of an empty destination table that a destination may make straight from a source
/// of its own kind (<see cref="IDestination.TryBulkLoadAsync"/>), bypassing the row-by-row pipeline: the rows, their
/// ledger entries and the checkpoint still commit in one destination transaction.
/// </summary>
/// <param name="Capture">The capture the pipeline would otherwise start (table, schema, ledger scope, resume position).</param>
/// <param name="CheckpointFor">Builds the checkpoint to commit from what was loaded (position, high-water mark, rows).</param>
public sealed record BulkLoadRequest(CaptureRequest Capture, Func<BulkLoadStats, Checkpoint> CheckpointFor)
{
    /// <summary>Commit times beyond this are counted as stamped in the future (timestamp CDC); null: not counted.</summary>
    public Instant? FutureLimit { get; init; }

    /// <summary>
    /// Rows per transaction for a destination that loads in chunks, each committing its checkpoint (a snapshot position
    /// after its last key) so an interrupted load resumes there; 0: one transaction. A destination may ignore it.
    /// </summary>
    public long ChunkRows { get; init; }

    /// <summary>
    /// Called after each chunk but the last has committed, with the totals so far and the committed checkpoint (the
    /// pipeline saves it to the state store and reports progress).
    /// </summary>
    public Func<BulkLoadStats, Checkpoint, CancellationToken, Task>? ChunkCommitted { get; init; }
}

/// <summary>What a bulk load copied and where the capture continues from.</summary>
/// <param name="Rows">Rows copied (all of them inserts: the destination table was empty).</param>
/// <param name="Position">The position the capture continues from, as a completed snapshot would leave it.</param>
/// <param name="HighWaterMark">The newest commit time among the copied rows (or the request's, when newer or none).</param>
public sealed record BulkLoadStats(long Rows, Position Position, Instant? HighWaterMark)
{
    /// <summary>How the destination loaded the table, as the report's <c>initial_load</c> names it.</summary>
    public string Method { get; init; } = "binary_copy";

    /// <summary>Transactions committed so far, this one included: the checkpoint's version is the table's before the load plus this.</summary>
    public int Commits { get; init; } = 1;

    /// <summary>Timestamp CDC: rows with neither an updated_at nor a usable created_at (compared by row hash later).</summary>
    public long NullCursorRows { get; init; }

    /// <summary>Timestamp CDC: rows with NULL updated_at whose created_at stood in.</summary>
    public long CreatedAtFallbackRows { get; init; }

    /// <summary>Timestamp CDC: rows stamped beyond <see cref="BulkLoadRequest.FutureLimit"/>, and the newest of them.</summary>
    public long FutureRows { get; init; }

    /// <inheritdoc cref="FutureRows"/>
    public Instant? NewestFuture { get; init; }

    /// <summary>Timestamp CDC: zone-less values that fell in a DST gap or overlap (placed by the capture's rule).</summary>
    public long DstGapRows { get; init; }

    /// <inheritdoc cref="DstGapRows"/>
    public long DstOverlapRows { get; init; }

    /// <summary>How long copying the rows took, and building their ledger entries (for the log).</summary>
    public TimeSpan CopyTime { get; init; }

    /// <inheritdoc cref="CopyTime"/>
    public TimeSpan LedgerTime { get; init; }
}

/// <summary>
/// The outcome of <see cref="IDestination.TryBulkLoadAsync"/>: loaded and committed; or why not (nothing written); or,
/// for a chunked load stopped by a chunk it could not copy (<see cref="Complete"/> false), the chunks committed and why
/// the rest is the pipeline's, from <see cref="Committed"/>'s position on.
/// </summary>
public sealed record BulkLoadOutcome(BulkLoadStats? Stats, Checkpoint? Committed, string? NotApplicable)
{
    /// <summary>Whether the whole table was loaded (when <see cref="Committed"/> is set).</summary>
    public bool Complete { get; init; } = true;

    public static BulkLoadOutcome Skipped(string reason) => new(null, null, reason);
}
