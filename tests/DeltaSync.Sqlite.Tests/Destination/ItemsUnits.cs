using DeltaSync.Core.Model;
using DeltaSync.Core.State;
using NodaTime;

namespace DeltaSync.Sqlite.Tests.Destination;

/// <summary>The two-column <c>items</c> table and checkpoints that the destination-level tests apply units to.</summary>
internal static class ItemsUnits
{
    public static readonly TableSchema Schema = new(
        "items",
        [new ColumnSchema("id", "INTEGER", DataKind.Integer, false, 1), new ColumnSchema("label", "TEXT", DataKind.Text, true, 0)],
        ["id"]);

    /// <summary>Checkpoint <paramref name="version"/> of stream <c>sync/items</c> at <paramref name="at"/>.</summary>
    public static Checkpoint Checkpoint(long version, Position at) =>
        new("sync/items", "items", version, at, "timestamp", null, null, "fp", CheckpointCounters.Zero, 0, "run", SystemClock.Instance.GetCurrentInstant());
}
