using DeltaSync.Core.Model;
using NodaTime;

namespace DeltaSync.Core.Ledger;

/// <summary>
/// What has been applied to one destination record from one source: the last position and commit time,
/// the hash of the row as applied, and whether it is now a tombstone.
/// </summary>
public sealed record LedgerEntry(RecordKey Key, Position Position, Instant? CommitTime, long RowHash, bool Deleted);
