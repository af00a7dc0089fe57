using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;

namespace DeltaSync.Core.Pipeline;

/// <summary>
/// Reconciliation of one source with a destination table several sources write. The destination holds every source's
/// rows, so a row the reconciling source does not have is not necessarily one it deleted: it may be another source's.
/// A repair delete is kept only for a key this source's ledger holds (it applied the record and has not deleted it since —
/// a hard delete its base capture could not see); the rest belong to other sources and are left to them. Upserts go
/// through the merge like any change.
/// </summary>
public static class SharedTableRepairs
{
    /// <summary>The batch without deletes of keys this source never held, and how many were dropped.</summary>
    public static async Task<(ChangeBatch Batch, int Foreign)> KeepOwnDeletesAsync(ChangeBatch batch, ILedger ledger, LedgerScope scope, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(ledger);
        var deletes = batch.Events.Where(e => e.Operation == ChangeOperation.Delete).Select(e => e.Key).ToHashSet();
        if (deletes.Count == 0)
        {
            return (batch, 0);
        }

        var held = await ledger.LookupAsync(scope, deletes, cancellationToken).ConfigureAwait(false);
        var kept = batch.Events.Where(e => e.Operation != ChangeOperation.Delete || (held.TryGetValue(e.Key, out var entry) && !entry.Deleted)).ToList();
        return kept.Count == batch.Events.Count ? (batch, 0) : (batch.With(kept, batch.CheckpointPosition), batch.Events.Count - kept.Count);
    }
}
