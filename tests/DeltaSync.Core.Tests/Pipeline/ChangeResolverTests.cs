using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using NodaTime;

namespace DeltaSync.Core.Tests.Pipeline;

public sealed class ChangeResolverTests
{
    private static readonly Instant Commit = Instant.FromUtc(2026, 1, 1, 12, 0);
    private static readonly Position At = new("test", "1");

    [Fact]
    public void A_row_whose_hash_matches_the_ledger_is_skipped()
    {
        var row = Row(1, "same");
        var known = Ledger(Applied(row));

        var resolved = ChangeResolver.Resolve([Upsert(row)], known);

        Assert.Empty(resolved.Writes);
        Assert.Empty(resolved.LedgerUpdates);
        Assert.Equal(1, resolved.Skipped);
    }

    [Fact]
    public void A_bulk_loaded_entry_is_compared_by_the_source_digest_and_a_write_keeps_the_digest_it_read()
    {
        var row = Row(1, "same");
        var digest = new LedgerEntry(new RecordKey([1L]), At, Commit, 4242, Deleted: false) { HashIsSourceDigest = true };

        var unchanged = ChangeResolver.Resolve([Upsert(row) with { SourceDigest = 4242 }], Ledger(digest));
        var changed = ChangeResolver.Resolve([Upsert(row) with { SourceDigest = 7 }], Ledger(digest));
        var undigested = ChangeResolver.Resolve([Upsert(row)], Ledger(digest));

        Assert.Empty(unchanged.Writes);
        Assert.Empty(unchanged.LedgerUpdates);
        Assert.Equal(1, unchanged.Skipped);
        Assert.Equal(WriteKind.Update, Assert.Single(changed.Writes).Kind);
        var kept = Assert.Single(changed.LedgerUpdates);
        Assert.Equal((7L, true), (kept.RowHash, kept.HashIsSourceDigest));
        // Read without a digest (a capture that cannot compute one): written once more, with the engine's hash.
        var rewritten = Assert.Single(undigested.LedgerUpdates);
        Assert.Single(undigested.Writes);
        Assert.Equal(RowHash.Compute(row), rewritten.RowHash);
        Assert.False(rewritten.HashIsSourceDigest);
    }

    [Fact]
    public void An_unchanged_row_recorded_by_the_engine_hash_takes_the_source_digest_without_a_write()
    {
        var row = Row(1, "same");

        var resolved = ChangeResolver.Resolve([Upsert(row) with { SourceDigest = 99 }], Ledger(Applied(row)));

        Assert.Empty(resolved.Writes);
        Assert.Equal(1, resolved.Skipped);
        var entry = Assert.Single(resolved.LedgerUpdates);
        Assert.Equal((99L, true, false), (entry.RowHash, entry.HashIsSourceDigest, entry.Deleted));
        Assert.Equal(Applied(row).Position, entry.Position);
    }

    [Fact]
    public void A_key_and_digest_without_values_never_matches_an_engine_hash_entry()
    {
        var entry = new LedgerEntry(new RecordKey([1L]), At, Commit, 0, Deleted: false);
        var probe = new ChangeEvent("t", new RecordKey([1L]), ChangeOperation.Upsert, null, Position.None, null, "s") { SourceDigest = 5 };

        Assert.False(entry.HasContentOf(probe));
        Assert.True((entry with { RowHash = 5, HashIsSourceDigest = true }).HasContentOf(probe));
    }

    [Fact]
    public void A_row_unknown_to_the_ledger_is_an_insert()
    {
        var row = Row(1, "new");

        var resolved = ChangeResolver.Resolve([Upsert(row)], Ledger());

        var write = Assert.Single(resolved.Writes);
        Assert.Equal(WriteKind.Insert, write.Kind);
        Assert.Equal(row, write.Values);
        var entry = Assert.Single(resolved.LedgerUpdates);
        Assert.Equal(RowHash.Compute(row), entry.RowHash);
        Assert.False(entry.Deleted);
    }

    [Fact]
    public void A_changed_row_the_ledger_holds_is_an_update()
    {
        var before = Row(1, "before");
        var after = Row(1, "after");

        var resolved = ChangeResolver.Resolve([Upsert(after)], Ledger(Applied(before)));

        var write = Assert.Single(resolved.Writes);
        Assert.Equal(WriteKind.Update, write.Kind);
        Assert.Equal(RowHash.Compute(after), Assert.Single(resolved.LedgerUpdates).RowHash);
    }

    [Fact]
    public void A_row_the_ledger_holds_as_a_tombstone_is_inserted_again()
    {
        var row = Row(1, "back");

        var resolved = ChangeResolver.Resolve([Upsert(row)], Ledger(Tombstone(1)));

        Assert.Equal(WriteKind.Insert, Assert.Single(resolved.Writes).Kind);
    }

    [Fact]
    public void A_delete_of_a_key_the_ledger_does_not_have_is_skipped()
    {
        var resolved = ChangeResolver.Resolve([Delete(7)], Ledger());

        Assert.Empty(resolved.Writes);
        Assert.Empty(resolved.LedgerUpdates);
        Assert.Equal(1, resolved.Skipped);
    }

    [Fact]
    public void A_delete_of_a_tombstone_is_skipped()
    {
        var resolved = ChangeResolver.Resolve([Delete(7)], Ledger(Tombstone(7)));

        Assert.Empty(resolved.Writes);
        Assert.Equal(1, resolved.Skipped);
    }

    [Fact]
    public void A_delete_of_a_live_row_writes_a_delete_and_a_tombstone()
    {
        var resolved = ChangeResolver.Resolve([Delete(1)], Ledger(Applied(Row(1, "x"))));

        var write = Assert.Single(resolved.Writes);
        Assert.Equal(WriteKind.Delete, write.Kind);
        Assert.Null(write.Values);
        Assert.True(Assert.Single(resolved.LedgerUpdates).Deleted);
    }

    [Fact]
    public void Delete_then_reinsert_in_one_batch_deletes_then_inserts_and_leaves_a_live_entry()
    {
        var old = Row(1, "old");
        var again = Row(1, "again");

        var resolved = ChangeResolver.Resolve([Delete(1), Upsert(again)], Ledger(Applied(old)));

        Assert.Equal([WriteKind.Delete, WriteKind.Insert], resolved.Writes.Select(w => w.Kind));
        var entry = Assert.Single(resolved.LedgerUpdates);
        Assert.False(entry.Deleted);
        Assert.Equal(RowHash.Compute(again), entry.RowHash);
    }

    [Fact]
    public void Reinserting_the_deleted_values_in_the_same_batch_is_still_written()
    {
        // The tombstone in between means the destination no longer has the row, whatever its old hash was.
        var row = Row(1, "same");

        var resolved = ChangeResolver.Resolve([Delete(1), Upsert(row)], Ledger(Applied(row)));

        Assert.Equal([WriteKind.Delete, WriteKind.Insert], resolved.Writes.Select(w => w.Kind));
        Assert.False(Assert.Single(resolved.LedgerUpdates).Deleted);
    }

    [Fact]
    public void Insert_then_delete_in_one_batch_ends_as_a_tombstone()
    {
        var resolved = ChangeResolver.Resolve([Upsert(Row(5, "brief")), Delete(5)], Ledger());

        Assert.Equal([WriteKind.Insert, WriteKind.Delete], resolved.Writes.Select(w => w.Kind));
        Assert.True(Assert.Single(resolved.LedgerUpdates).Deleted);
    }

    [Fact]
    public void Two_versions_of_one_row_in_a_batch_are_compared_with_each_other()
    {
        var first = Row(1, "one");
        var second = Row(1, "two");

        var resolved = ChangeResolver.Resolve([Upsert(first), Upsert(second), Upsert(second)], Ledger());

        Assert.Equal([WriteKind.Insert, WriteKind.Update], resolved.Writes.Select(w => w.Kind));
        Assert.Equal(1, resolved.Skipped);
        Assert.Equal(RowHash.Compute(second), Assert.Single(resolved.LedgerUpdates).RowHash);
    }

    [Fact]
    public async Task Resolving_a_batch_looks_the_ledger_up_once_for_its_distinct_keys()
    {
        var ledger = new RecordingLedger(Applied(Row(1, "a")));
        var schema = new TableSchema("t", [new ColumnSchema("id", "INTEGER", DataKind.Integer, false, 1), new ColumnSchema("v", "TEXT", DataKind.Text, true, 0)], ["id"]);
        var batch = new ChangeBatch(schema, [Upsert(Row(1, "a")), Upsert(Row(2, "b")), Upsert(Row(1, "a2")), Delete(3)], At);

        var resolved = await ChangeResolver.ResolveAsync(batch, ledger, new LedgerScope("t", "source"), CancellationToken.None);

        var lookup = Assert.Single(ledger.Lookups);
        Assert.Equal(3, lookup.Count);
        Assert.Equal([WriteKind.Insert, WriteKind.Update], resolved.Writes.Select(w => w.Kind));
        Assert.Equal(2, resolved.Skipped);
    }

    [Fact]
    public void A_repair_is_written_even_where_the_ledger_says_it_is_applied()
    {
        // Reconciliation found the destination drifted from the ledger: a row edited there, a row the ledger never saw.
        var row = Row(1, "same");
        var known = Ledger(Applied(row), Tombstone(2));

        var resolved = ChangeResolver.Resolve([Upsert(row), Delete(2), Delete(3)], known, repair: true);

        Assert.Equal([WriteKind.Update, WriteKind.Delete, WriteKind.Delete], resolved.Writes.Select(w => w.Kind));
        Assert.Equal(0, resolved.Skipped);
    }

    private static object?[] Row(long id, string value) => [id, value];

    private static RecordKey Key(long id) => new([id]);

    private static ChangeEvent Upsert(object?[] row) =>
        new("t", new RecordKey([row[0]]), ChangeOperation.Upsert, row, At, Commit, "source") { RowHash = RowHash.Compute(row) };

    private static ChangeEvent Delete(long id) => new("t", Key(id), ChangeOperation.Delete, null, At, Commit, "source");

    private static LedgerEntry Applied(object?[] row) => new(new RecordKey([row[0]]), At, Commit, RowHash.Compute(row), Deleted: false);

    private static LedgerEntry Tombstone(long id) => new(Key(id), At, Commit, 0, Deleted: true);

    private static Dictionary<RecordKey, LedgerEntry> Ledger(params LedgerEntry[] entries) => entries.ToDictionary(e => e.Key);

    private sealed class RecordingLedger(params LedgerEntry[] entries) : ILedger
    {
        private readonly Dictionary<RecordKey, LedgerEntry> _entries = entries.ToDictionary(e => e.Key);

        public List<IReadOnlyCollection<RecordKey>> Lookups { get; } = [];

        public ValueTask<IReadOnlyDictionary<RecordKey, LedgerEntry>> LookupAsync(LedgerScope scope, IReadOnlyCollection<RecordKey> keys, CancellationToken cancellationToken)
        {
            Lookups.Add(keys.ToList());
            IReadOnlyDictionary<RecordKey, LedgerEntry> found = keys.Where(_entries.ContainsKey).ToDictionary(k => k, k => _entries[k]);
            return ValueTask.FromResult(found);
        }

        public IAsyncEnumerable<LedgerEntry> ScanAsync(LedgerScope scope, CancellationToken cancellationToken) =>
            _entries.Values.OrderBy(e => e.Key).ToAsyncEnumerable();
    }
}

/// <summary>Ordering by ledger time: delayed deletes, undeletes, backdated rows and version resets.</summary>
public sealed class ChangeResolverOrderingTests
{
    private static readonly Instant T0 = Instant.FromUtc(2026, 1, 1, 12, 0);
    private static readonly Position At = new("cursor", "");

    private static ChangeEvent Upsert(long id, string value, Instant? at, Position? position = null)
    {
        object?[] row = [id, value];
        return new ChangeEvent("t", new RecordKey([id]), ChangeOperation.Upsert, row, position ?? At, at, "source") { RowHash = RowHash.Compute(row) };
    }

    private static ChangeEvent Delete(long id, Instant? at) => new("t", new RecordKey([id]), ChangeOperation.Delete, null, At, at, "source");

    private static LedgerEntry Applied(long id, string value, Instant? at, Position? position = null) =>
        new(new RecordKey([id]), position ?? At, at, RowHash.Compute([id, value]), Deleted: false);

    private static LedgerEntry Tombstone(long id, Instant? at) => new(new RecordKey([id]), At, at, 0, Deleted: true);

    private static Dictionary<RecordKey, LedgerEntry> Ledger(params LedgerEntry[] entries) => entries.ToDictionary(e => e.Key);

    [Fact]
    public void A_delete_older_than_the_last_applied_update_is_ignored()
    {
        var resolved = ChangeResolver.Resolve([Delete(1, T0 - Duration.FromMinutes(5))], Ledger(Applied(1, "renamed", T0)));

        Assert.Empty(resolved.Writes);
        Assert.Equal(1, resolved.DelayedDeletes);
        Assert.Empty(resolved.LedgerUpdates);
    }

    [Fact]
    public void A_delete_at_or_after_the_last_applied_update_is_applied()
    {
        var resolved = ChangeResolver.Resolve([Delete(1, T0), Delete(2, null)], Ledger(Applied(1, "x", T0), Applied(2, "y", T0)));

        Assert.Equal([WriteKind.Delete, WriteKind.Delete], resolved.Writes.Select(w => w.Kind));
        Assert.Equal(0, resolved.DelayedDeletes);
    }

    [Fact]
    public void A_re_insert_newer_than_the_delete_revives_the_record_and_an_older_one_does_not()
    {
        var known = Ledger(Tombstone(1, T0), Tombstone(2, T0));

        var resolved = ChangeResolver.Resolve([Upsert(1, "back", T0 + Duration.FromSeconds(1)), Upsert(2, "stale", T0 - Duration.FromSeconds(1))], known);

        var write = Assert.Single(resolved.Writes);
        Assert.Equal(new RecordKey([1L]), write.Key);
        Assert.Equal(WriteKind.Insert, write.Kind);
        Assert.Equal(1, resolved.RevivalsRefused);
    }

    [Fact]
    public void Changes_in_commit_order_are_never_overruled_by_their_times()
    {
        // A trigger's time is its transaction's start: a later change may carry an earlier time.
        var known = Ledger(Applied(1, "x", T0), Tombstone(2, T0));

        var resolved = ChangeResolver.Resolve([Delete(1, T0 - Duration.FromMinutes(1)), Upsert(2, "back", T0 - Duration.FromMinutes(1))], known, inCommitOrder: true);

        Assert.Equal([WriteKind.Delete, WriteKind.Insert], resolved.Writes.Select(w => w.Kind));
        Assert.Equal(0, resolved.DelayedDeletes + resolved.RevivalsRefused);
    }

    [Fact]
    public void A_changed_row_with_an_older_timestamp_is_applied_and_counted_as_backdated()
    {
        var resolved = ChangeResolver.Resolve([Upsert(1, "backdated", T0 - Duration.FromHours(1))], Ledger(Applied(1, "current", T0)));

        Assert.Equal(WriteKind.Update, Assert.Single(resolved.Writes).Kind);
        Assert.Equal(1, resolved.Backdated);
    }

    [Fact]
    public void A_lower_version_with_new_content_is_a_reset_applied_by_content()
    {
        var v9 = new Position(Core.Capture.LedgerDiff.VersionKind, "9");
        var v2 = new Position(Core.Capture.LedgerDiff.VersionKind, "2");

        var changed = ChangeResolver.Resolve([Upsert(1, "after reset", null, v2)], Ledger(Applied(1, "before", null, v9)));
        var same = ChangeResolver.Resolve([Upsert(1, "before", null, v2)], Ledger(Applied(1, "before", null, v9)));

        Assert.Equal(1, changed.VersionResets);
        Assert.Equal(WriteKind.Update, Assert.Single(changed.Writes).Kind);
        Assert.Equal(1, same.VersionResets);
        Assert.Empty(same.Writes);
        // The ledger follows the new numbering, so the next pass compares against version 2.
        Assert.Equal(v2, Assert.Single(same.LedgerUpdates).Position);
    }

    [Fact]
    public void Repairs_are_written_whatever_the_ledger_and_the_times_say()
    {
        var known = Ledger(Applied(1, "same", T0), Tombstone(2, T0));

        var resolved = ChangeResolver.Resolve([Upsert(1, "same", T0), Upsert(2, "old", T0 - Duration.FromHours(1)), Delete(3, null)], known, repair: true);

        Assert.Equal(3, resolved.Writes.Count);
        Assert.Equal(0, resolved.RevivalsRefused);
    }
}
