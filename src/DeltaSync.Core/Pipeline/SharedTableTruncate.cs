using DeltaSync.Core.Connectors;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using NodaTime;

namespace DeltaSync.Core.Pipeline;

/// <summary>A source's TRUNCATE of a table several sources write, as record-level changes.</summary>
/// <param name="Batch">The batch without <see cref="ChangeBatch.TruncateFirst"/>: a delete of every record the source's ledger holds, then the batch's own changes.</param>
/// <param name="Withdrawn">The deletes of records another source still holds: they only tombstone this source's ledger entry and are not merged.</param>
/// <param name="Deleted">Records only this source held: their deletes are merged through conflict detection.</param>
public sealed record TruncateExpansion(ChangeBatch Batch, IReadOnlySet<ChangeEvent> Withdrawn, int Deleted)
{
    /// <summary>Records kept because another source still holds them.</summary>
    public int Kept => Withdrawn.Count;
}

/// <summary>
/// A TRUNCATE at one source of a destination table that several sources write must not empty the shared table: the
/// rows other sources wrote are theirs. It is read as "this source no longer has any of its records": each record the
/// source's ledger holds (applied and not deleted) becomes a delete of that source. A record another source still holds
/// (live in that source's ledger) is withdrawn only — this source's ledger entry is tombstoned, so a re-load after the
/// TRUNCATE is a fresh insert, but the destination row and its base stay (the other source has not deleted it, and a
/// TRUNCATE says nothing about one record's fields). The other deletes go through <see cref="RecordMerger"/> like any
/// delete, so a field edited at the destination since the last sync is a delete conflict decided by policy.
/// </summary>
public static class SharedTableTruncate
{
    /// <summary>
    /// Expands <paramref name="batch"/> (which must have <see cref="ChangeBatch.TruncateFirst"/>). Reads the source's
    /// ledger scope once (keys only are kept: memory grows with the records the source holds, once per TRUNCATE) and
    /// looks the live keys up in each other source's scope in one call per source.
    /// </summary>
    public static async Task<TruncateExpansion> ExpandAsync(
        ChangeBatch batch,
        TablePlan plan,
        IReadOnlyList<string> otherSources,
        ILedger ledger,
        Instant now,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(otherSources);
        ArgumentNullException.ThrowIfNull(ledger);
        var live = new List<RecordKey>();
        await foreach (var entry in ledger.ScanAsync(new LedgerScope(plan.DestinationTable, plan.SourceName), cancellationToken).ConfigureAwait(false))
        {
            if (!entry.Deleted)
            {
                live.Add(entry.Key);
            }
        }

        var heldElsewhere = new HashSet<RecordKey>();
        foreach (var other in otherSources)
        {
            if (live.Count == 0)
            {
                break;
            }

            var found = await ledger.LookupAsync(new LedgerScope(plan.DestinationTable, other), live, cancellationToken).ConfigureAwait(false);
            foreach (var (key, entry) in found)
            {
                if (!entry.Deleted)
                {
                    heldElsewhere.Add(key);
                }
            }
        }

        // The TRUNCATE's time: that of the first change committed with or after it, else when it was read.
        var at = batch.Events.Count > 0 && batch.Events[0].CommitTime is { } first ? first : now;
        var events = new List<ChangeEvent>(live.Count + batch.Events.Count);
        var withdrawn = new HashSet<ChangeEvent>(ReferenceEqualityComparer.Instance);
        foreach (var key in live)
        {
            var delete = RowChanges.Delete(batch.Schema, plan.SourceName, key, batch.CheckpointPosition, at);
            events.Add(delete);
            if (heldElsewhere.Contains(key))
            {
                withdrawn.Add(delete);
            }
        }

        events.AddRange(batch.Events);
        return new TruncateExpansion(batch.WithTruncateResolved(events), withdrawn, live.Count - withdrawn.Count);
    }
}
