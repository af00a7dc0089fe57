using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;

namespace DeltaSync.Core.Pipeline;

/// <summary>The writes one batch needs after the ledger has dropped what is already applied.</summary>
/// <param name="Skipped">Changes that needed no write (already applied, or lost to a newer change by ledger time).</param>
public sealed record ResolvedBatch(IReadOnlyList<RowWrite> Writes, IReadOnlyList<LedgerEntry> LedgerUpdates, int Skipped)
{
    /// <summary>The changes that became <see cref="Writes"/>, in the same order (late-arrival checks read their times).</summary>
    public IReadOnlyList<ChangeEvent> Applied { get; init; } = [];

    /// <summary>The ledger's entries for the batch's keys before it (the conflict path reads its sources' merge states from them).</summary>
    public IReadOnlyDictionary<RecordKey, LedgerEntry> Previous { get; init; } = new Dictionary<RecordKey, LedgerEntry>();

    /// <summary>Deletes older (by commit time) than the record's last applied update: the update stands.</summary>
    public int DelayedDeletes { get; init; }

    /// <summary>Re-inserts older than the record's delete: the record stays deleted.</summary>
    public int RevivalsRefused { get; init; }

    /// <summary>Changed rows whose commit time is older than what was applied for them (a backdated write): applied.</summary>
    public int Backdated { get; init; }

    /// <summary>Rows whose version or sequence value went down since it was applied (a reset): compared by content.</summary>
    public int VersionResets { get; init; }
}

/// <summary>
/// Decides, against the ledger, what each change means for the destination: a row whose hash equals what was applied
/// is dropped (replays and lookback re-reads are no-ops, invariant 2); a delete of a record that is absent or already
/// a tombstone is dropped; everything else becomes an insert, update or delete plus the ledger entry recording it.
/// Where both the change and the ledger entry carry a source commit time, deletes and revivals are ordered by it: a
/// delete older than the record's last applied update loses, and a re-insert older than the record's delete does not
/// revive it. A row read from the source is its current state, so a changed row is applied even when its timestamp went
/// back (counted as backdated); a version that went down is a reset, and the content hash decides.
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
            return Resolve(batch.Events, new Dictionary<RecordKey, LedgerEntry>(), batch.InCommitOrder, batch.Repair);
        }

        var keys = new HashSet<RecordKey>(batch.Events.Count);
        foreach (var change in batch.Events)
        {
            keys.Add(change.Key);
        }

        var known = await ledger.LookupAsync(scope, keys, cancellationToken).ConfigureAwait(false);
        return Resolve(batch.Events, known, batch.InCommitOrder, batch.Repair);
    }

    /// <summary>The pure part: given what the ledger holds for the batch's keys, the writes to make.</summary>
    /// <param name="inCommitOrder">
    /// The events come from a change log or trigger table in commit order: each supersedes what was applied before it,
    /// whatever the commit times say (a trigger's time is its transaction's start, which commits need not follow).
    /// </param>
    /// <param name="repair">
    /// Reconciliation found the destination itself differs from the source: every change is written whatever the
    /// ledger says (it describes what was applied, and the destination has since drifted from it).
    /// </param>
    public static ResolvedBatch Resolve(IReadOnlyList<ChangeEvent> events, IReadOnlyDictionary<RecordKey, LedgerEntry> known, bool inCommitOrder = false, bool repair = false)
    {
        ArgumentNullException.ThrowIfNull(events);
        ArgumentNullException.ThrowIfNull(known);
        var current = known.Count == 0 ? new Dictionary<RecordKey, LedgerEntry>(events.Count) : new Dictionary<RecordKey, LedgerEntry>(known);
        var writes = new List<RowWrite>(events.Count);
        var applied = new List<ChangeEvent>(events.Count);
        // One entry per key: the state after the batch.
        var updates = new Dictionary<RecordKey, LedgerEntry>(events.Count);
        int skipped = 0, delayedDeletes = 0, revivalsRefused = 0, backdated = 0, versionResets = 0;
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

                if (!repair && Older(change, entry!, inCommitOrder))
                {
                    // A delayed delete: the record was updated after the delete happened; the update stands.
                    delayedDeletes++;
                    skipped++;
                    continue;
                }

                writes.Add(new RowWrite(WriteKind.Delete, change.Key, null));
                applied.Add(change);
                // A source's merge state stays with its entry (the conflict path replaces it; a withdrawn record keeps it).
                var tombstone = new LedgerEntry(change.Key, change.Position, change.CommitTime, 0, Deleted: true) { MergeState = entry?.MergeState };
                current[change.Key] = tombstone;
                updates[change.Key] = tombstone;
                continue;
            }

            if (!repair && entry is { Deleted: true } && Older(change, entry, inCommitOrder))
            {
                // Undelete only by a write newer than the delete.
                revivalsRefused++;
                skipped++;
                continue;
            }

            var reset = entry is { Deleted: false } && VersionWentDown(change.Position, entry.Position);
            if (reset)
            {
                versionResets++;
            }

            if (!repair && entry is { Deleted: false } && entry.HasContentOf(change))
            {
                skipped++;
                if (reset)
                {
                    // Same content under a lower version: nothing to write, but the ledger follows the new numbering so
                    // later versions compare against it.
                    var renumbered = entry with { Position = change.Position, CommitTime = change.CommitTime ?? entry.CommitTime };
                    current[change.Key] = renumbered;
                    updates[change.Key] = renumbered;
                }
                else if (change.SourceDigest is { } digest && !entry.HashIsSourceDigest)
                {
                    // Unchanged, but recorded by the engine's hash: the entry takes the source's digest, which is what a
                    // pass comparing by digests alone reads next time (else it would read this row in full every pass).
                    var digested = entry with { RowHash = digest, HashIsSourceDigest = true };
                    current[change.Key] = digested;
                    updates[change.Key] = digested;
                }

                continue;
            }

            if (entry is { Deleted: false } && !reset && Older(change, entry, inCommitOrder))
            {
                backdated++;
            }

            writes.Add(new RowWrite(entry is null || entry.Deleted ? WriteKind.Insert : WriteKind.Update, change.Key, change.Values));
            applied.Add(change);
            // With the source's digest when the capture read one (the scope's ledger compares by it: see LedgerEntry.HasContentOf).
            var upserted = new LedgerEntry(change.Key, change.Position, change.CommitTime, change.SourceDigest ?? change.RowHash, Deleted: false)
            {
                MergeState = entry?.MergeState,
                HashIsSourceDigest = change.SourceDigest is not null,
            };
            current[change.Key] = upserted;
            updates[change.Key] = upserted;
        }

        return new ResolvedBatch(writes, [.. updates.Values], skipped)
        {
            Applied = applied,
            Previous = known,
            DelayedDeletes = delayedDeletes,
            RevivalsRefused = revivalsRefused,
            Backdated = backdated,
            VersionResets = versionResets,
        };
    }

    /// <summary>Whether the change happened before what the ledger applied, by source commit times both sides know.</summary>
    private static bool Older(ChangeEvent change, LedgerEntry entry, bool inCommitOrder) =>
        !inCommitOrder && change.CommitTime is { } at && entry.CommitTime is { } applied && at < applied;

    /// <summary>A per-row version or table sequence lower than the one applied for the same record.</summary>
    private static bool VersionWentDown(Position incoming, Position applied)
    {
        if (incoming.Kind != applied.Kind || incoming.Kind is not (Capture.LedgerDiff.VersionKind or Capture.CursorPosition.SequenceKind))
        {
            return false;
        }

        return Number(incoming) is { } now && Number(applied) is { } before && now < before;
    }

    private static long? Number(Position position)
    {
        var text = position.Value.AsSpan();
        var bar = text.IndexOf('|');
        if (bar >= 0)
        {
            text = text[..bar];
        }

        return long.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var value) ? value : null;
    }
}
