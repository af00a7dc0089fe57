using DeltaSync.Core.Model;
using NodaTime;

namespace DeltaSync.Core.State;

/// <summary>Running totals kept in a table's checkpoint.</summary>
public sealed record CheckpointCounters(long RecordsProcessed, long Inserted, long Updated, long Deleted, long DeadLettered)
{
    public static readonly CheckpointCounters Zero = new(0, 0, 0, 0, 0);

    public CheckpointCounters Add(long processed, long inserted, long updated, long deleted, long deadLettered) =>
        new(RecordsProcessed + processed, Inserted + inserted, Updated + updated, Deleted + deleted, DeadLettered + deadLettered);
}

/// <summary>
/// Where one table's sync stands. Checkpoints form an append-only history per stream; each version
/// carries a checksum over its content and the writer's fencing epoch.
/// </summary>
/// <param name="Stream">The state key: <c>sync/table</c>.</param>
/// <param name="Table">The source table.</param>
/// <param name="Version">1, 2, 3… within the stream.</param>
/// <param name="Position">The capture position to resume from.</param>
/// <param name="Method">The capture method that wrote <paramref name="Position"/> (a position is meaningless to another method).</param>
/// <param name="HighWaterMark">Newest source commit time applied so far.</param>
/// <param name="Watermark">Event-time watermark: <paramref name="HighWaterMark"/> minus the tolerance window.</param>
/// <param name="SchemaFingerprint">The source schema seen when this was written.</param>
/// <param name="Totals">Counts since the stream began.</param>
/// <param name="Epoch">The fencing epoch of the writer.</param>
/// <param name="RunId">The run that wrote it.</param>
/// <param name="CreatedAt">When it was written.</param>
/// <param name="Note">Why it was written when not by a batch (rollback, repair, recovered from destination).</param>
public sealed record Checkpoint(
    string Stream,
    string Table,
    long Version,
    Position Position,
    string Method,
    Instant? HighWaterMark,
    Instant? Watermark,
    string SchemaFingerprint,
    CheckpointCounters Totals,
    long Epoch,
    string RunId,
    Instant CreatedAt,
    string? Note = null)
{
    /// <summary>The state format this engine writes; older formats are migrated on load.</summary>
    public const string CurrentStateVersion = "1.0";

    public string StateVersion { get; init; } = CurrentStateVersion;
}
