using DeltaSync.Core.Connectors;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Sqlite.Destination;
using DeltaSync.Sqlite.Tests.Engine;
using NodaTime;

namespace DeltaSync.Sqlite.Tests.Destination;

/// <summary>
/// The fast merge recognises a row it wrote by its digest: the digest SQLite computes in place from the stored row
/// (<c>deltasync_merged_digest</c>) equals the one computed from the values the merge wrote, whatever the column types
/// made of them, and changes with any other write.
/// </summary>
public sealed class MergedRowDigestTests
{
    private static readonly TableSchema Schema = new(
        "things",
        [
            new ColumnSchema("id", "INTEGER", DataKind.Integer, false, 1),
            new ColumnSchema("label", "TEXT", DataKind.Text, true, 0),
            new ColumnSchema("amount", "REAL", DataKind.Real, true, 0),
            new ColumnSchema("count", "INTEGER", DataKind.Integer, true, 0),
            new ColumnSchema("flag", "BOOLEAN", DataKind.Boolean, true, 0),
            new ColumnSchema("data", "BLOB", DataKind.Blob, true, 0),
            new ColumnSchema("seen_at", "TEXT", DataKind.Timestamp, true, 0),
        ],
        ["id"]);

    public static TheoryData<object?[]> Rows() => new()
    {
        new object?[] { 1L, "plain", 2.5, 3L, true, new byte[] { 1, 2 }, "2026-12-07T10:00:00.000Z" },
        new object?[] { 2L, "Zoë ✓ — non-ASCII", 2.0, 0L, false, Array.Empty<byte>(), null },
        new object?[] { 3L, "", 3L, 4.0, null, null, Instant.FromUtc(2026, 12, 7, 10, 0) },
        new object?[] { 4L, null, -0.5, long.MinValue, true, new byte[300], "x" },
        new object?[] { 5, "an int key", 1e300, 9007199254740993L, null, null, null },
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public async Task The_digest_of_a_stored_row_is_the_digest_of_the_values_written(object?[] values)
    {
        using var workspace = new SyncWorkspace();
        await using var destination = new SqliteDestination(workspace.Destination.Path);
        await destination.PrepareTableAsync("things", Schema, CancellationToken.None);
        var key = new RecordKey([values[0]]);
        await destination.ApplyAsync(Unit([new RowWrite(WriteKind.Insert, key, values)]), CancellationToken.None);

        var digests = await destination.ReadRowDigestsAsync("things", Schema, [key, new RecordKey([99L])], CancellationToken.None);

        Assert.Equal(MergedRowDigest.Of(values), Assert.Single(digests, d => d.Key == key).Value);
        Assert.Equal(MergedRowDigest.Of(Schema, (await destination.ReadRecordsAsync("things", Schema, [key], CancellationToken.None))[key].Row!), digests[key]);

        workspace.Destination.Execute("UPDATE things SET label = coalesce(label, '') || '.'");
        var changed = await destination.ReadRowDigestsAsync("things", Schema, [key], CancellationToken.None);
        Assert.NotEqual(digests[key], changed[key]);
    }

    private static ApplyUnit Unit(IReadOnlyList<RowWrite> writes) =>
        new(Schema, "things", new LedgerScope("things", "source"), writes, [], ItemsUnits.Checkpoint(1, Position.None) with { Stream = "sync/things", Table = "things" })
        {
            CommitsCheckpoint = false,
        };
}
