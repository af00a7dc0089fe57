using DeltaSync.Core.Connectors;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using DeltaSync.Sqlite.Destination;
using DeltaSync.Sqlite.Tests.Engine;
using NodaTime;

namespace DeltaSync.Sqlite.Tests.Destination;

/// <summary>Every batch carries a deterministic key; re-sending an applied batch is a no-op.</summary>
public sealed class IdempotencyKeyTests
{
    private static readonly TableSchema Schema = ItemsUnits.Schema;

    [Fact]
    public async Task Re_sending_an_applied_batch_writes_nothing_and_says_so()
    {
        using var workspace = new SyncWorkspace();
        await using var destination = new SqliteDestination(workspace.Destination.Path);
        await destination.PrepareTableAsync("items", Schema, CancellationToken.None);
        var unit = Unit("first");

        var applied = await destination.ApplyAsync(unit, CancellationToken.None);
        workspace.Destination.Execute("UPDATE items SET label = 'changed by hand' WHERE id = 1");
        var resent = await destination.ApplyAsync(unit with { Checkpoint = unit.Checkpoint with { Version = 2 } }, CancellationToken.None);

        Assert.Equal(new ApplyResult(2, 0, 0), applied);
        Assert.Equal(new ApplyResult(0, 0, 0, AlreadyApplied: true), resent);
        Assert.Equal("changed by hand", workspace.Destination.Scalar("SELECT label FROM items WHERE id = 1"));
        // The checkpoint still moves with the re-sent unit.
        Assert.Contains("\"version\":2", await destination.ReadCommittedCheckpointAsync("sync/items", CancellationToken.None) ?? "", StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_batch_with_other_content_or_after_a_state_reset_is_applied()
    {
        using var workspace = new SyncWorkspace();
        await using var destination = new SqliteDestination(workspace.Destination.Path);
        await destination.PrepareTableAsync("items", Schema, CancellationToken.None);
        await destination.ApplyAsync(Unit("first"), CancellationToken.None);

        var other = await destination.ApplyAsync(Unit("second"), CancellationToken.None);
        Assert.False(other.AlreadyApplied);
        Assert.Equal("second 1", workspace.Destination.Scalar("SELECT label FROM items WHERE id = 1"));

        await destination.ResetStreamAsync("sync/items", new LedgerScope("items", "source"), CancellationToken.None);
        workspace.Destination.Execute("DELETE FROM items");
        var again = await destination.ApplyAsync(Unit("first"), CancellationToken.None);
        Assert.False(again.AlreadyApplied);
        Assert.Equal(2L, workspace.Destination.Count("items"));
    }

    [Fact]
    public void The_key_is_deterministic_and_depends_on_positions_and_content()
    {
        var unit = Unit("first");
        var key = Key(unit, Position.None);

        Assert.Equal(key, Key(Unit("first"), Position.None));
        Assert.NotEqual(key, Key(Unit("second"), Position.None));
        Assert.NotEqual(key, Key(unit, new Position("cursor", "x")));
        Assert.StartsWith("ib_", key, StringComparison.Ordinal);
    }

    private static string Key(ApplyUnit unit, Position first) =>
        BatchIdentity.Key("source", "items", first, unit.Checkpoint.Position, unit.Writes, unit.LedgerUpdates);

    private static ApplyUnit Unit(string label)
    {
        var at = new Position("cursor", "2026-01-01T00:00:00Z|2");
        var rows = new[] { new object?[] { 1L, label + " 1" }, new object?[] { 2L, label + " 2" } };
        var writes = rows.Select(r => new RowWrite(WriteKind.Insert, Schema.KeyOf(r), r)).ToList();
        var ledger = rows.Select(r => new LedgerEntry(Schema.KeyOf(r), at, null, RowHash.Compute(r), false)).ToList();
        var checkpoint = ItemsUnits.Checkpoint(1, at);
        return new ApplyUnit(Schema, "items", new LedgerScope("items", "source"), writes, ledger, checkpoint)
        {
            IdempotencyKey = BatchIdentity.Key("source", "items", Position.None, at, writes, ledger),
        };
    }
}
