using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using NodaTime;

namespace DeltaSync.Core.Connectors;

/// <summary>Everything a capture needs to resume one table.</summary>
/// <param name="Plan">The table and its resolved capture settings.</param>
/// <param name="Schema">The table's schema as described by the source.</param>
/// <param name="Resume">The checkpointed position; <see cref="Position.None"/> starts with a snapshot.</param>
/// <param name="BatchSize">Changes per batch.</param>
/// <param name="Ledger">The destination's ledger (polling and per-row versions compare against it).</param>
/// <param name="Scope">This stream's part of the ledger.</param>
/// <param name="HighWaterMark">The newest commit time applied so far, when known.</param>
public sealed record CaptureRequest(
    TablePlan Plan,
    TableSchema Schema,
    Position Resume,
    int BatchSize,
    ILedger Ledger,
    LedgerScope Scope,
    Instant? HighWaterMark)
{
    /// <summary>
    /// Opens the destination table's key-range digests (same projection as the source's), for reconciliation by
    /// bisection; null when the pipeline offers none. The pipeline first waits until every batch this capture
    /// yielded so far is applied, so the digests describe the destination as the capture left it.
    /// </summary>
    public Func<CancellationToken, ValueTask<IRangeDigests?>>? DestinationDigests { get; init; }

    /// <summary>
    /// Completes once the pipeline has applied (and committed the checkpoint of) every batch this capture yielded so far;
    /// null when the pipeline offers no such signal. A log capture waits on it before telling the server it may release
    /// WAL mid-pass.
    /// </summary>
    public Func<CancellationToken, Task>? WaitForApplied { get; init; }

    /// <summary>
    /// The ledger holds source digests for this scope (<see cref="Ledger.LedgerEntry.HashIsSourceDigest"/>, written by a
    /// bulk load): a capture that can should give each row its <see cref="ChangeEvent.SourceDigest"/>, so unchanged rows
    /// are recognised; rows without one are applied once more and get the engine's hash.
    /// </summary>
    public bool SourceDigests { get; init; }
}

/// <summary>
/// Reads one table's changes as batches in source order. Each batch carries the position that is safe to checkpoint
/// once it (and everything before it) is applied.
/// </summary>
public interface IChangeCapture : IAsyncDisposable
{
    /// <summary>Batches until the source has nothing more now (one pass); the pipeline calls again to poll.</summary>
    IAsyncEnumerable<ChangeBatch> ReadAsync(CancellationToken cancellationToken);

    /// <summary>Called after a checkpoint at <paramref name="position"/> is durable (trigger capture prunes its change table here).</summary>
    ValueTask OnCheckpointedAsync(Position position, CancellationToken cancellationToken);
}
