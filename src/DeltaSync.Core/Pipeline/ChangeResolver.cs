using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;

namespace DeltaSync.Core.Pipeline;

/// <summary>The writes one batch needs after the ledger has dropped what is already applied.</summary>
public sealed record ResolvedBatch(IReadOnlyList<RowWrite> Writes, IReadOnlyList<LedgerEntry> LedgerUpdates, int Skipped);

/// <summary>
/// Decides, against the ledger, what each change means for the destination: a row whose hash equals what was applied
/// is dropped (replays and lookback re-reads are no-ops, invariant 2); a delete of a record that is absent or already
/// a tombstone is dropped; everything else becomes an insert, update or delete plus the ledger entry recording it.
/// </summary>
public static class ChangeResolver
{
    public static async ValueTask<ResolvedBatch> ResolveAsync(ChangeBatch batch, ILedger ledger, LedgerScope scope, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(ledger);
        if (batch.Events.Count == 0)
        {
            return new ResolvedBatch([], [], 0);
        }

        if (batch.TruncateFirst)
        {
            // Everything is deleted before these changes: the ledger's entries no longer describe the destination.
            return Resolve(batch.Events, new Dictionary<RecordKey, LedgerEntry>());
        }

        var keys = new HashSet<RecordKey>(batch.Events.Count);
        foreach (var change in batch.Events)
        {
            keys.Add(change.Key);
        }

        var known = await ledger.LookupAsync(scope, keys, cancellationToken).ConfigureAwait(false);
        return Resolve(batch.Events, known, batch.Repair);
    }

    /// <summary>
    /// The pure part: given what the ledger holds for the batch's keys, the writes to make. A <paramref name="repair"/>
    /// batch (reconciliation found the destination itself differs from the source) is written whatever the ledger
    /// says: the ledger describes what was applied, and the destination has since drifted from it.
    /// </summary>
    public static ResolvedBatch Resolve(IReadOnlyList<ChangeEvent> events, IReadOnlyDictionary<RecordKey, LedgerEntry> known, bool repair = false)
    {
        ArgumentNullException.ThrowIfNull(events);
        ArgumentNullException.ThrowIfNull(known);
        var current = known.Count == 0 ? new Dictionary<RecordKey, LedgerEntry>(events.Count) : new Dictionary<RecordKey, LedgerEntry>(known);
        var writes = new List<RowWrite>(events.Count);
        // One entry per key: the state after the batch.
        var updates = new Dictionary<RecordKey, LedgerEntry>(events.Count);
        var skipped = 0;
        foreach (var change in events)
        {
            current.TryGetValue(change.Key, out var entry);
            if (change.Operation == ChangeOperation.Delete)
            {
                if (!repair && (entry is null || entry.Deleted))
                {
                    skipped++;
                    continue;
                }

                writes.Add(new RowWrite(WriteKind.Delete, change.Key, null));
                var tombstone = new LedgerEntry(change.Key, change.Position, change.CommitTime, 0, Deleted: true);
                current[change.Key] = tombstone;
                updates[change.Key] = tombstone;
                continue;
            }

            if (!repair && entry is { Deleted: false } && entry.RowHash == change.RowHash)
            {
                skipped++;
                continue;
            }

            writes.Add(new RowWrite(entry is null || entry.Deleted ? WriteKind.Insert : WriteKind.Update, change.Key, change.Values));
            var applied = new LedgerEntry(change.Key, change.Position, change.CommitTime, change.RowHash, Deleted: false);
            current[change.Key] = applied;
            updates[change.Key] = applied;
        }

        return new ResolvedBatch(writes, [.. updates.Values], skipped);
    }
}
