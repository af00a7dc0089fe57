using DeltaSync.Core.Model;
using NodaTime;

namespace DeltaSync.Core.Ledger;

/// <summary>
/// What has been applied to one destination record from one source: the last position and commit time,
/// the hash of the row as applied, and whether it is now a tombstone.
/// </summary>
public sealed record LedgerEntry(RecordKey Key, Position Position, Instant? CommitTime, long RowHash, bool Deleted)
{
    /// <summary>
    /// <see cref="RowHash"/> is the source system's own digest of the row (<see cref="ChangeEvent.SourceDigest"/>), not the
    /// engine's <see cref="Ledger.RowHash"/>: first written by a bulk load that built the ledger inside the destination,
    /// where the engine's hash cannot be computed; later writes keep the digest their capture read with the row.
    /// </summary>
    public bool HashIsSourceDigest { get; init; }

    /// <summary>
    /// For a table several sources write: this source's fast-merge state of the record (<see cref="Conflicts.SourceMergeState"/>),
    /// opaque to the ledger, which stores it with the entry when <see cref="ILedger.KeepsMergeState"/>. Null otherwise.
    /// </summary>
    public byte[]? MergeState { get; init; }

    /// <summary>
    /// Whether <paramref name="change"/>'s row is the content this entry records as applied, by whichever hash the entry
    /// holds. A change without a source digest never matches a digest entry: it is applied once more (idempotently); a
    /// change without values (a digest alone) never matches an entry of the engine's hash.
    /// </summary>
    public bool HasContentOf(ChangeEvent change)
    {
        ArgumentNullException.ThrowIfNull(change);
        // A change without values (a key and digest only, compared before the row is read) has no engine hash.
        return HashIsSourceDigest ? change.SourceDigest == RowHash : change.Values is not null && change.RowHash == RowHash;
    }
}
