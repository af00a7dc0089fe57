using DeltaSync.Core.Connectors;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Sqlite.Destination;
using DeltaSync.Sqlite.Tests.Engine;

namespace DeltaSync.Sqlite.Tests.Destination;

/// <summary>
/// <see cref="ApplyUnit.BeforeCommit"/>: what must be durable before a batch (its conflict log) runs while the batch is
/// written; the commit waits for it, and its failure rolls the whole batch back.
/// </summary>
public sealed class BeforeCommitTests
{
    private static readonly LedgerScope Scope = new("items", "source");

    [Fact]
    public async Task The_commit_waits_for_the_work_that_must_be_durable_first()
    {
        using var workspace = new SyncWorkspace();
        await using var destination = await OpenAsync(workspace);
        var reached = new TaskCompletionSource();
        var release = new TaskCompletionSource();

        var applying = Task.Run(() => destination.ApplyAsync(
            Unit(1) with { BeforeCommit = _ => { reached.TrySetResult(); return release.Task; } },
            CancellationToken.None));
        await reached.Task.WaitAsync(TimeSpan.FromSeconds(30));

        // Every statement ran; nothing is committed while the log is still being written.
        Assert.Equal(0L, Count(workspace, "items"));
        Assert.False(applying.IsCompleted);

        release.SetResult();
        var result = await applying.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(3, result.Updated);
        Assert.Equal(3L, Count(workspace, "items"));
        Assert.Equal(3L, Count(workspace, SqliteLedger.Table));
    }

    [Fact]
    public async Task A_failed_before_commit_rolls_the_batch_back_and_a_later_batch_commits()
    {
        using var workspace = new SyncWorkspace();
        await using var destination = await OpenAsync(workspace);

        var failed = await Assert.ThrowsAsync<BeforeCommitException>(() => destination.ApplyAsync(
            Unit(1) with { BeforeCommit = _ => Task.FromException(new IOException("state store unreachable")) },
            CancellationToken.None));
        Assert.IsType<IOException>(failed.InnerException);
        Assert.Equal(0L, Count(workspace, "items"));
        Assert.Equal(0L, Count(workspace, SqliteLedger.Table));
        Assert.Null(await destination.ReadCommittedCheckpointAsync("sync/items", CancellationToken.None));
        Assert.Empty(await destination.Ledger.LookupAsync(Scope, [new RecordKey([1L])], CancellationToken.None));

        var retried = await destination.ApplyAsync(Unit(1) with { BeforeCommit = _ => Task.CompletedTask }, CancellationToken.None);
        Assert.Equal(3, retried.Updated);
        Assert.Equal(3L, Count(workspace, "items"));
        Assert.NotNull(await destination.ReadCommittedCheckpointAsync("sync/items", CancellationToken.None));
    }

    private static async Task<SqliteDestination> OpenAsync(SyncWorkspace workspace)
    {
        var destination = new SqliteDestination(workspace.Destination.Path);
        await destination.PrepareTableAsync("items", ItemsUnits.Schema, CancellationToken.None);
        return destination;
    }

    private static long Count(SyncWorkspace workspace, string table) => (long)workspace.Destination.Scalar($"SELECT count(*) FROM {table}")!;

    private static ApplyUnit Unit(int version)
    {
        var at = new Position("cursor", $"2026-01-01T00:00:00Z|{version}");
        var ids = new long[] { 1, 2, 3 };
        var writes = ids.Select(id => new RowWrite(WriteKind.Update, new RecordKey([id]), [id, $"v{version}"])).ToList();
        var ledger = ids.Select(id => new LedgerEntry(new RecordKey([id]), at, null, RowHash.Compute([id, $"v{version}"]), false)).ToList();
        return new ApplyUnit(ItemsUnits.Schema, "items", Scope, writes, ledger, ItemsUnits.Checkpoint(version, at));
    }
}
