using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using DeltaSync.Postgres.Destination;
using DeltaSync.Postgres.State;
using NodaTime;

namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>Per-table leases with a fencing epoch: two workers never sync one table at once; a stale one is refused.</summary>
public sealed class LeaseFencingTests
{
    private const string Items = """
        CREATE TABLE items (id bigint PRIMARY KEY, label text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now() - interval '1 minute');
        INSERT INTO items (id, label) SELECT g, 'item ' || g FROM generate_series(1, 50) g;
        """;

    private static string StateBlock(PgSyncWorkspace w) => $"""
        state:
          storage:
            type: database
            connection: "{w.Destination.Uri}"
        """;

    [Fact]
    public async Task A_table_leased_by_another_live_worker_is_not_synced_and_the_report_names_the_holder()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        var config = w.Config("{name: items, cdc_method: timestamp}", blocks: StateBlock(w));
        await using (var store = new PostgresStateStore(w.Destination.Uri))
        {
            await store.InitializeAsync(CancellationToken.None);
            await store.AcquireLeaseAsync("sync/items", "other-host/4242/1", TimeSpan.FromMinutes(5), CancellationToken.None);
        }

        var report = await w.RunAsync(config);

        Assert.Equal("failed", report.Metadata.Status);
        Assert.Contains(report.Errors, e => e.Message.Contains("held by 'other-host/4242/1'", StringComparison.Ordinal));
        Assert.Equal(0L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM information_schema.tables WHERE table_name = 'items'"));
    }

    [Fact]
    public async Task A_lease_left_by_a_killed_worker_on_this_machine_is_taken_over_with_a_higher_epoch()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        var config = w.Config("{name: items, cdc_method: timestamp}", blocks: StateBlock(w));
        await using var store = new PostgresStateStore(w.Destination.Uri);
        await store.InitializeAsync(CancellationToken.None);
        var dead = $"{Environment.MachineName}/{int.MaxValue - 7}/1";
        Assert.True(TableLease.IsDeadLocalOwner(dead));
        Assert.False(TableLease.IsDeadLocalOwner(TableLease.LocalOwner));
        var deadEpoch = await store.AcquireLeaseAsync("sync/items", dead, TimeSpan.FromMinutes(5), CancellationToken.None);

        var report = await w.RunCompletedAsync(config);

        Assert.Equal(50, report.Statistics.RecordsInserted);
        var newest = CheckpointCodec.TryDeserialize((await store.ReadHistoryAsync("sync/items", 1, CancellationToken.None)).Single().Payload, out _);
        Assert.True(newest!.Epoch > deadEpoch, $"epoch {newest.Epoch} is not above the dead worker's {deadEpoch}");
        // The killed worker, were it to come back, could no longer append.
        await Assert.ThrowsAsync<StateConflictException>(() => store.AppendFencedAsync(new StoredCheckpoint("sync/items", 99, "{}", SystemClock.Instance.GetCurrentInstant()), dead, deadEpoch, CancellationToken.None));
    }

    [Fact]
    public async Task A_batch_from_a_worker_with_an_older_epoch_is_refused_by_the_destination_and_rolled_back()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        var config = w.Config("{name: items, cdc_method: timestamp}", blocks: StateBlock(w));
        await w.RunCompletedAsync(config);
        await w.RunCompletedAsync(config);
        long committedEpoch;
        await using (var store = new PostgresStateStore(w.Destination.Uri))
        {
            committedEpoch = CheckpointCodec.TryDeserialize((await store.ReadHistoryAsync("sync/items", 1, CancellationToken.None)).Single().Payload, out _)!.Epoch;
        }

        await using var destination = new PostgresDestination(w.Destination.Uri);
        var schema = new TableSchema("items", [new ColumnSchema("id", "bigint", DataKind.Integer, false, 1), new ColumnSchema("label", "text", DataKind.Text, false, 0), new ColumnSchema("updated_at", "timestamp with time zone", DataKind.Timestamp, false, 0)], ["id"]) { Dialect = "postgresql" };
        await destination.PrepareTableAsync("items", schema, CancellationToken.None);
        var stale = new Checkpoint("sync/items", "items", 1000, Position.None, "timestamp", null, null, "fp", CheckpointCounters.Zero, committedEpoch - 1, "stale-run", SystemClock.Instance.GetCurrentInstant());
        var key = new RecordKey([1L]);
        var unit = new ApplyUnit(schema, "items", new LedgerScope("items", "source"), [new RowWrite(WriteKind.Update, key, [1L, "written by a stale worker", DateTime.UtcNow])], [], stale);

        var error = await Assert.ThrowsAsync<SyncException>(() => destination.ApplyAsync(unit, CancellationToken.None));

        Assert.Contains("stale writer", error.Message, StringComparison.Ordinal);
        Assert.Equal("item 1", await w.Destination.ScalarAsync<string>("SELECT label FROM items WHERE id = 1"));
        Assert.True(committedEpoch > 1, $"each run takes the lease anew: epoch {committedEpoch}");
    }
}
