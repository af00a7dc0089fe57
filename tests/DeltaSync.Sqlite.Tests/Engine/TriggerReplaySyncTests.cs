using DeltaSync.Core.State;
using NodaTime;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>Trigger CDC replays its change table from an older checkpoint without touching the destination (invariant 2).</summary>
public sealed class TriggerReplaySyncTests : IDisposable
{
    private readonly SyncWorkspace _workspace = new();

    [Fact]
    public async Task Replaying_a_delete_and_reinsert_that_fall_in_different_batches_writes_nothing()
    {
        var items = new ItemsTable(_workspace.Source);
        items.Create();
        items.InsertMany(1, 3);
        // prune: false keeps the change rows, so an older checkpoint really replays them; batch 1 splits D(2) from I(2).
        var config = _workspace.Configure(SyncYaml.Config("{name: items, cdc_method: trigger}", batchSize: 1, blocks: "cdc: {trigger: {prune: false}}"));
        await _workspace.RunCompletedAsync(config);
        var beforeChanges = (await _workspace.NewestCheckpointAsync(ItemsTable.Name)).Version;
        _workspace.Source.Execute("""
            CREATE TEMP TABLE saved AS SELECT * FROM items WHERE id = 2;
            DELETE FROM items WHERE id = 2;
            INSERT INTO items SELECT * FROM saved;
            """);
        await _workspace.RunCompletedAsync(config);
        _workspace.AssertSynced(ItemsTable.Name, "id");

        await using (var state = await _workspace.OpenStateAsync())
        {
            await new CheckpointHistory(state, SystemClock.Instance).RollbackAsync(SyncWorkspace.Stream(ItemsTable.Name), beforeChanges, CancellationToken.None);
        }

        var replay = await _workspace.RunCompletedAsync(config);

        Assert.True(SyncWorkspace.Writes(replay) == 0, "replaying already-applied changes wrote: " + SyncWorkspace.Describe(replay));
        _workspace.AssertSynced(ItemsTable.Name, "id");
    }

    public void Dispose() => _workspace.Dispose();
}
