using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using DeltaSync.Sqlite.Destination;
using DeltaSync.Sqlite.Tests.Engine;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using NodaTime;

namespace DeltaSync.Sqlite.Tests.Destination;

/// <summary>
/// The SQLite ledger's two tiers: new keys are appended to the main table, entries of records already synced go to
/// the recent table and win over the main table's, and folding moves them into the main table. Whatever the tier, the
/// ledger reads back the last entry written for every key.
/// </summary>
public sealed class LedgerTiersTests
{
    private static readonly TableSchema Schema = ItemsUnits.Schema;

    private static readonly LedgerScope Scope = new("items", "source");

    [Fact]
    public async Task Entries_of_records_already_synced_go_to_the_recent_tier_and_win_over_the_main_tier()
    {
        using var workspace = new SyncWorkspace();
        await using var destination = await OpenAsync(workspace);

        await ApplyAsync(destination, 1, Enumerable.Range(1, 100).Select(i => ((long)i, false)));
        Assert.Equal((100L, 0L), Tiers(workspace));

        await ApplyAsync(destination, 2, [(10, false), (50, false), (20, true), (101, false)]);
        // 101 is new: appended to the main table; 10, 20 and 50 were synced before: the recent table.
        Assert.Equal((101L, 3L), Tiers(workspace));

        var found = await destination.Ledger.LookupAsync(Scope, [.. new long[] { 10, 20, 50, 60, 101, 150 }.Select(Key)], CancellationToken.None);
        Assert.Equal(Hash(10, 2), found[Key(10)].RowHash);
        Assert.True(found[Key(20)].Deleted);
        Assert.Equal(Hash(50, 2), found[Key(50)].RowHash);
        Assert.Equal(Hash(60, 1), found[Key(60)].RowHash);
        Assert.Equal(Hash(101, 2), found[Key(101)].RowHash);
        Assert.False(found.ContainsKey(Key(150)));

        var scanned = await ScanAsync(destination);
        Assert.Equal(Enumerable.Range(1, 101).Select(i => (long)i), scanned.Select(e => (long)e.Key.Values[0]!));
        Assert.Equal(Hash(10, 2), scanned[9].RowHash);
        Assert.True(scanned[19].Deleted);
        Assert.Equal(Hash(11, 1), scanned[10].RowHash);
    }

    [Fact]
    public async Task A_full_recent_tier_is_folded_into_the_main_table_before_the_next_batch()
    {
        using var workspace = new SyncWorkspace();
        await using var destination = await OpenAsync(workspace, foldAt: 10);
        await ApplyAsync(destination, 1, Enumerable.Range(1, 50).Select(i => ((long)i, false)));

        await ApplyAsync(destination, 2, Enumerable.Range(1, 12).Select(i => ((long)i * 4, i % 3 == 0)));
        Assert.Equal((50L, 12L), Tiers(workspace));

        await ApplyAsync(destination, 3, [(7, false)]);
        // The twelve were folded first; the batch's own entry is the recent table's only one.
        Assert.Equal((50L, 1L), Tiers(workspace));
        Assert.Equal(Hash(8, 2), (long)workspace.Destination.Scalar($"SELECT row_hash FROM {SqliteLedger.Table} WHERE key = $key", ("$key", Key(8).Encoded))!);
        Assert.Equal(1L, (long)workspace.Destination.Scalar($"SELECT deleted FROM {SqliteLedger.Table} WHERE key = $key", ("$key", Key(12).Encoded))!);

        var scanned = await ScanAsync(destination);
        Assert.Equal(50, scanned.Count);
        Assert.Equal(Hash(7, 3), scanned[6].RowHash);
        Assert.Equal(Hash(8, 2), scanned[7].RowHash);
    }

    [Fact]
    public async Task Resetting_a_stream_empties_both_tiers()
    {
        using var workspace = new SyncWorkspace();
        await using var destination = await OpenAsync(workspace);
        await ApplyAsync(destination, 1, Enumerable.Range(1, 20).Select(i => ((long)i, false)));
        await ApplyAsync(destination, 2, [(5, false)]);

        await destination.ResetStreamAsync("sync/items", Scope, CancellationToken.None);

        Assert.Equal((0L, 0L), Tiers(workspace));
        Assert.Empty(await destination.Ledger.LookupAsync(Scope, [Key(5)], CancellationToken.None));
    }

    [Fact]
    public async Task A_key_appended_and_rewritten_in_one_batch_reads_back_its_last_entry()
    {
        using var workspace = new SyncWorkspace();
        await using var destination = await OpenAsync(workspace);
        await ApplyAsync(destination, 1, [(1, false), (2, false)]);

        await ApplyAsync(destination, 2, [(3, false), (3, true)]);

        Assert.Equal((3L, 1L), Tiers(workspace));
        Assert.True((await destination.Ledger.LookupAsync(Scope, [Key(3)], CancellationToken.None))[Key(3)].Deleted);
        Assert.True((await ScanAsync(destination))[2].Deleted);
    }

    [Fact]
    public async Task Folding_one_scope_leaves_the_recent_entries_of_the_others()
    {
        using var workspace = new SyncWorkspace();
        await using var destination = await OpenAsync(workspace, foldAt: 3);
        var other = new LedgerScope("items", "other");
        await ApplyAsync(destination, 1, Enumerable.Range(1, 10).Select(i => ((long)i, false)));
        await ApplyAsync(destination, 1, Enumerable.Range(1, 10).Select(i => ((long)i, false)), other);
        await ApplyAsync(destination, 2, [(2, false), (4, false)], other);
        await ApplyAsync(destination, 2, [(1, false), (3, false), (5, false)]);

        await ApplyAsync(destination, 3, [(11, false)]);

        Assert.Equal(2L, (long)workspace.Destination.Scalar($"SELECT count(*) FROM {SqliteLedger.Recent}")!);
        var found = await destination.Ledger.LookupAsync(other, [Key(2), Key(3)], CancellationToken.None);
        Assert.Equal(Hash(2, 2), found[Key(2)].RowHash);
        Assert.Equal(Hash(3, 1), found[Key(3)].RowHash);
    }

    [Fact]
    public async Task A_rolled_back_cascade_leaves_no_cached_key_behind()
    {
        using var workspace = new SyncWorkspace();
        var parents = new TableSchema("parents", [new ColumnSchema("id", "INTEGER", DataKind.Integer, false, 1)], ["id"]);
        await using (var destination = new SqliteDestination(workspace.Destination.Path))
        {
            await destination.PrepareTableAsync("items", Schema, CancellationToken.None);
            await destination.PrepareTableAsync("parents", parents, CancellationToken.None);
            await ApplyAsync(destination, 1, Enumerable.Range(1, 10).Select(i => ((long)i, false)), epoch: 5);
            // A child row this scope never synced (another source wrote it), referencing parent 7.
            workspace.Destination.Execute("INSERT INTO items (id, label) VALUES (20, '7')");

            // The parent's delete cascades to it (a tombstone above the child scope's largest key), then the batch is
            // refused as a stale writer's and rolled back.
            var at = new Position("cursor", "2026-01-01T00:00:00Z|2");
            var delete = new ApplyUnit(
                parents,
                "parents",
                new LedgerScope("parents", "source"),
                [new RowWrite(WriteKind.Delete, Key(7), null)],
                [new LedgerEntry(Key(7), at, null, 0, true)],
                ItemsUnits.Checkpoint(2, at) with { Epoch = 1 })
            {
                Children = [new ChildRelation("items", Scope, ["label"], DeleteAction.Cascade, [])],
            };
            await Assert.ThrowsAnyAsync<Exception>(() => destination.ApplyAsync(delete, CancellationToken.None));

            await ApplyAsync(destination, 3, [(15, false)], epoch: 5);
            Assert.Equal((11L, 0L), Tiers(workspace));
        }

        await using var reopened = new SqliteDestination(workspace.Destination.Path);
        Assert.Equal(Hash(15, 3), (await reopened.Ledger.LookupAsync(Scope, [Key(15)], CancellationToken.None))[Key(15)].RowHash);
    }

    [Fact]
    public async Task Entries_another_process_wrote_are_read_back()
    {
        using var workspace = new SyncWorkspace();
        await using var destination = await OpenAsync(workspace);
        await ApplyAsync(destination, 1, Enumerable.Range(1, 10).Select(i => ((long)i, false)));
        await destination.Ledger.LookupAsync(Scope, [Key(5)], CancellationToken.None);

        // Another process (a second worker, `conflicts resolve`) rewrites key 5 and appends key 12.
        await using (var other = new SqliteDestination(workspace.Destination.Path))
        {
            await ApplyAsync(other, 2, [(5, false), (12, false)]);
        }

        var found = await destination.Ledger.LookupAsync(Scope, [Key(5), Key(12)], CancellationToken.None);
        Assert.Equal(Hash(5, 2), found[Key(5)].RowHash);
        Assert.Equal(Hash(12, 2), found[Key(12)].RowHash);
    }

    /// <summary>
    /// For any sequence of batches over a small key space, with any fold threshold: every look-up and a full scan read
    /// the last entry written for each key, once, in key order; and no recent key lies above the main table's largest.
    /// </summary>
    [Property(MaxTest = 40)]
    public Property The_ledger_reads_back_the_last_entry_of_every_key(int[][] batches, byte foldAt) =>
        Prop.ToProperty(CheckAsync(batches.Where(b => b is { Length: > 0 }).Take(12).ToArray(), 1 + (foldAt % 16)).GetAwaiter().GetResult());

    private static async Task<bool> CheckAsync(int[][] batches, int foldAt)
    {
        using var workspace = new SyncWorkspace();
        await using var destination = await OpenAsync(workspace, foldAt: foldAt);
        var model = new SortedDictionary<long, (long Hash, bool Deleted)>();
        var version = 0;
        foreach (var batch in batches)
        {
            version++;
            var entries = batch.Select(n => ((long)(Math.Abs(n % 64)), n < 0)).DistinctBy(e => e.Item1).ToList();
            await ApplyAsync(destination, version, entries);
            foreach (var (id, deleted) in entries)
            {
                model[id] = (deleted ? 0 : Hash(id, version), deleted);
            }

            var found = await destination.Ledger.LookupAsync(Scope, [.. Enumerable.Range(0, 64).Select(i => Key(i))], CancellationToken.None);
            var scanned = await ScanAsync(destination);
            var expected = model.Select(m => (m.Key, m.Value.Hash, m.Value.Deleted)).ToList();
            if (!found.Values.Select(Entry).Order().SequenceEqual(expected) || !scanned.Select(Entry).SequenceEqual(expected))
            {
                return false;
            }

            var recentAboveMain = workspace.Destination.Scalar(
                $"SELECT count(*) FROM {SqliteLedger.Recent} WHERE key > (SELECT max(key) FROM {SqliteLedger.Table})");
            if ((long)recentAboveMain! != 0)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>A destination on the workspace's file with the items table prepared and the given fold threshold.</summary>
    private static async Task<SqliteDestination> OpenAsync(SyncWorkspace workspace, int foldAt = SqliteLedger.DefaultFoldAt)
    {
        var destination = new SqliteDestination(workspace.Destination.Path);
        destination.TieredLedger.FoldAt = foldAt;
        await destination.PrepareTableAsync("items", Schema, CancellationToken.None);
        return destination;
    }

    private static (long Key, long Hash, bool Deleted) Entry(LedgerEntry e) => ((long)e.Key.Values[0]!, e.RowHash, e.Deleted);

    private static (long Main, long Recent) Tiers(SyncWorkspace workspace) =>
        ((long)workspace.Destination.Scalar($"SELECT count(*) FROM {SqliteLedger.Table}")!, (long)workspace.Destination.Scalar($"SELECT count(*) FROM {SqliteLedger.Recent}")!);

    private static RecordKey Key(long id) => new([id]);

    private static long Hash(long id, int version) => RowHash.Compute([id, $"v{version}"]);

    private static async Task<List<LedgerEntry>> ScanAsync(SqliteDestination destination)
    {
        var entries = new List<LedgerEntry>();
        await foreach (var entry in destination.Ledger.ScanAsync(Scope, CancellationToken.None))
        {
            entries.Add(entry);
        }

        return entries;
    }

    /// <summary>Applies one batch: a row (id, "v{version}") per kept id, a delete per deleted one, and their ledger entries.</summary>
    private static Task<ApplyResult> ApplyAsync(SqliteDestination destination, int version, IEnumerable<(long Id, bool Deleted)> ids, LedgerScope? scope = null, long epoch = 0)
    {
        var at = new Position("cursor", $"2026-01-01T00:00:00Z|{version}");
        var writes = new List<RowWrite>();
        var ledger = new List<LedgerEntry>();
        foreach (var (id, deleted) in ids)
        {
            if (deleted)
            {
                writes.Add(new RowWrite(WriteKind.Delete, Key(id), null));
                ledger.Add(new LedgerEntry(Key(id), at, null, 0, true));
            }
            else
            {
                object?[] row = [id, $"v{version}"];
                writes.Add(new RowWrite(WriteKind.Update, Key(id), row));
                ledger.Add(new LedgerEntry(Key(id), at, null, Hash(id, version), false));
            }
        }

        var checkpoint = ItemsUnits.Checkpoint(version, at) with { Stream = scope is { } other ? $"sync/{other.Source}/items" : "sync/items", Epoch = epoch };
        return destination.ApplyAsync(new ApplyUnit(Schema, "items", scope ?? Scope, writes, ledger, checkpoint), CancellationToken.None);
    }
}
