using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Sqlite.Destination;
using DeltaSync.Sqlite.Tests.Engine;

namespace DeltaSync.Sqlite.Tests.Destination;

/// <summary>
/// A source's merge state stays with its ledger entry: written and read back, kept when the entry is rewritten in its
/// tier without one (entries written outside the conflict path carry it: ChangeResolver copies it, a cascade looks it up
/// in both tiers), and withdrawn by another source's batch without touching the rest of the entry.
/// </summary>
public sealed class LedgerMergeStateTests
{
    private static readonly LedgerScope Crm = new("items", "crm");
    private static readonly LedgerScope Shop = new("items", "shop");

    [Fact]
    public async Task An_entry_rewritten_without_a_state_keeps_the_state_its_tier_holds()
    {
        using var workspace = new SyncWorkspace();
        await using var destination = await OpenAsync(workspace);
        var key = new RecordKey([1L]);
        // Appended to the main tier, then rewritten (to the recent tier, which the state moves to).
        await destination.ApplyAsync(Unit(Crm, 1, [new LedgerEntry(key, Position.None, null, 7, false) { MergeState = [3, 1, 1] }]), CancellationToken.None);
        await destination.ApplyAsync(Unit(Crm, 2, [new LedgerEntry(key, Position.None, null, 8, false) { MergeState = [3, 1, 2] }]), CancellationToken.None);

        await destination.ApplyAsync(Unit(Crm, 3, [new LedgerEntry(key, Position.None, null, 0, Deleted: true)]), CancellationToken.None);

        var entry = (await destination.Ledger.LookupAsync(Crm, [key], CancellationToken.None))[key];
        Assert.True(entry.Deleted);
        Assert.Equal([3, 1, 2], entry.MergeState);
    }

    [Fact]
    public async Task Another_sources_batch_writes_only_the_merge_state_of_an_entry_it_withdraws()
    {
        using var workspace = new SyncWorkspace();
        await using var destination = await OpenAsync(workspace);
        var key = new RecordKey([1L]);
        var entry = new LedgerEntry(key, Position.None, null, 7, false) { MergeState = [3, 1, 1] };
        await destination.ApplyAsync(Unit(Shop, 1, [entry]), CancellationToken.None);
        // Meanwhile the entry became a tombstone (a cascade from a parent table, say).
        await destination.ApplyAsync(Unit(Shop, 2, [entry with { Deleted = true, RowHash = 0, MergeState = null }]), CancellationToken.None);

        // crm's batch withdraws the state it read before the tombstone: only merge_state changes.
        await destination.ApplyAsync(Unit(Crm, 3, []) with { ForeignLedgerUpdates = [(Shop, entry with { MergeState = [3, 1, 0] })] }, CancellationToken.None);

        var stored = (await destination.Ledger.LookupAsync(Shop, [key], CancellationToken.None))[key];
        Assert.True(stored.Deleted);
        Assert.Equal(0, stored.RowHash);
        Assert.Equal([3, 1, 0], stored.MergeState);
    }

    private static async Task<SqliteDestination> OpenAsync(SyncWorkspace workspace)
    {
        var destination = new SqliteDestination(workspace.Destination.Path);
        await destination.PrepareTableAsync("items", ItemsUnits.Schema, CancellationToken.None);
        return destination;
    }

    private static ApplyUnit Unit(LedgerScope scope, long version, IReadOnlyList<LedgerEntry> ledger) =>
        new(ItemsUnits.Schema, "items", scope, [], ledger, ItemsUnits.Checkpoint(version, Position.None) with { Stream = "sync/" + scope.Source + "/items" });
}
