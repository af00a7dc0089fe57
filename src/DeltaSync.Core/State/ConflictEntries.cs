using NodaTime;

namespace DeltaSync.Core.State;

/// <summary>
/// One entry of the append-only conflict log and resolution history as a state store keeps it: a detection, a
/// resolution (automatic or a reviewer's) or a write that joined a pending review.
/// </summary>
/// <param name="EntryId">Deterministic: the same detection or resolution logged again (a replayed batch, a retried run) is not appended twice.</param>
/// <param name="ConflictId">The conflict (<c>conflict_…</c>).</param>
/// <param name="Stream">The stream whose change met the conflict.</param>
/// <param name="Kind"><c>detected</c>, <c>resolved</c> or <c>held_update</c>.</param>
/// <param name="LoggedAt">When it was logged.</param>
/// <param name="Json">The entry as one JSON object (for a detection, the spec's Conflict Resolution Report).</param>
public sealed record ConflictLogRecord(string EntryId, string ConflictId, string Stream, string Kind, Instant LoggedAt, string Json);

/// <summary>
/// A conflict waiting for manual review (the review queue): the record it holds and the spec's Conflict Resolution
/// Report at detection. It leaves the queue when <c>deltasync conflicts resolve</c> settles it.
/// </summary>
/// <param name="ConflictId">The conflict.</param>
/// <param name="Stream">The stream whose change met it.</param>
/// <param name="Table">The destination table.</param>
/// <param name="RecordId">The record's key as reports show it.</param>
/// <param name="Key">The record's key in its encoded form (<see cref="Model.RecordKey.Encoded"/>), hex: how the destination finds it.</param>
/// <param name="DetectedAt">When it was detected.</param>
/// <param name="RecordJson">The Conflict Resolution Report JSON.</param>
public sealed record ConflictReview(string ConflictId, string Stream, string Table, string RecordId, string Key, Instant DetectedAt, string RecordJson);
