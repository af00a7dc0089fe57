using DeltaSync.Core.Capture;
using DeltaSync.Core.Connectors;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace DeltaSync.Core.Tests.Capture;

public sealed class RangeReconcilerTests
{
    [Fact]
    public async Task Equal_tables_are_settled_by_one_digest_and_no_rows()
    {
        var rows = Enumerable.Range(1, 10_000).Select(i => KeyValuePair.Create((long)i, (long)i * 3)).ToList();
        var source = new InMemoryDigestSide(rows);
        var destination = new InMemoryDigestSide(rows);
        var reconciler = new RangeReconciler(source, destination, new RangeReconcileOptions(16, 64));

        var repairs = await ReconcileAsync(reconciler);

        Assert.Empty(repairs);
        Assert.Equal(1, reconciler.RangesCompared);
        Assert.Equal(0, reconciler.LeafRowsFetched);
    }

    [Fact]
    public async Task Only_ranges_holding_drift_are_read_row_by_row()
    {
        var rows = Enumerable.Range(1, 100_000).Select(i => KeyValuePair.Create((long)i, (long)i)).ToList();
        var source = new InMemoryDigestSide(rows);
        var destination = new InMemoryDigestSide(rows);
        destination.Rows[500] = -1;                     // changed at the destination
        destination.Rows.Remove(42_000);                // deleted at the destination
        source.Rows.Remove(77_777);                     // hard delete at the source
        source.Rows[150_000] = 1;                       // new at the source
        var reconciler = new RangeReconciler(source, destination, new RangeReconcileOptions(16, 64));

        var repairs = await ReconcileAsync(reconciler);

        Assert.Equal([500L, 42_000L, 150_000L], repairs.SelectMany(r => r.Upserts).Select(k => (long)k.Values[0]!));
        Assert.Equal([77_777L], repairs.SelectMany(r => r.Deletes).Select(k => (long)k.Values[0]!));
        Assert.True(reconciler.LeafRowsFetched <= 4 * 2 * 64, $"{reconciler.LeafRowsFetched} leaf rows read");
        Assert.True(reconciler.RangesCompared < 200, $"{reconciler.RangesCompared} ranges compared");
    }

    [Fact]
    public async Task A_range_the_source_emptied_is_split_by_the_destination_keys()
    {
        var destination = new InMemoryDigestSide(Enumerable.Range(1, 5_000).Select(i => KeyValuePair.Create((long)i, 0L)));
        var source = new InMemoryDigestSide([]);
        var reconciler = new RangeReconciler(source, destination, new RangeReconcileOptions(4, 100));

        var repairs = await ReconcileAsync(reconciler);

        Assert.Equal(5_000, repairs.Sum(r => r.Deletes.Count));
        Assert.Empty(repairs.SelectMany(r => r.Upserts));
        Assert.All(repairs, r => Assert.True(r.Deletes.Count <= 100));
    }

    [Fact]
    public void Sides_hashing_rows_differently_are_refused()
    {
        var other = new OtherHash();
        Assert.Throws<ArgumentException>(() => new RangeReconciler(new InMemoryDigestSide([]), other, new RangeReconcileOptions()));
    }

    /// <summary>
    /// For any two tables: applying the repairs makes the destination equal to the source, and leaf rows are only
    /// read from ranges that differ — at most two sides × one leaf per drifted key.
    /// </summary>
    [Property(MaxTest = 300)]
    public Property Applying_the_repairs_makes_the_destination_equal_and_reads_only_differing_leaves(
        ushort[] sourceKeys, ushort[] destinationOnly, ushort[] changed, ushort[] missing, byte leaf, byte ranges)
    {
        var source = new InMemoryDigestSide(sourceKeys.Distinct().Select(k => KeyValuePair.Create((long)k, (long)k * 7)));
        var destination = new InMemoryDigestSide(source.Rows);
        foreach (var key in missing)
        {
            destination.Rows.Remove(key);
        }

        foreach (var key in changed.Where(k => destination.Rows.ContainsKey(k)))
        {
            destination.Rows[key] = -key;
        }

        foreach (var key in destinationOnly.Where(k => !source.Rows.ContainsKey(k)))
        {
            destination.Rows[key] = 1;
        }

        var drift = source.Rows.Keys.Union(destination.Rows.Keys)
            .Count(k => !source.Rows.TryGetValue(k, out var s) || !destination.Rows.TryGetValue(k, out var d) || s != d);
        var options = new RangeReconcileOptions(2 + (ranges % 8), 1 + (leaf % 8));
        var reconciler = new RangeReconciler(source, destination, options);

        var repairs = ReconcileAsync(reconciler).GetAwaiter().GetResult();
        foreach (var repair in repairs)
        {
            foreach (var key in repair.Upserts)
            {
                destination.Rows[(long)key.Values[0]!] = source.Rows[(long)key.Values[0]!];
            }

            foreach (var key in repair.Deletes)
            {
                destination.Rows.Remove((long)key.Values[0]!);
            }
        }

        var equal = source.Rows.Count == destination.Rows.Count && source.Rows.All(r => destination.Rows.TryGetValue(r.Key, out var v) && v == r.Value);
        var bounded = reconciler.LeafRowsFetched <= 2L * options.LeafRows * drift;
        return (equal && bounded && (drift > 0 || reconciler.RangesCompared == 1)).ToProperty()
            .Label($"equal={equal}, leaf rows={reconciler.LeafRowsFetched}, drift={drift}, leaf={options.LeafRows}");
    }

    private static async Task<List<RangeRepair>> ReconcileAsync(RangeReconciler reconciler)
    {
        var repairs = new List<RangeRepair>();
        await foreach (var repair in reconciler.ReconcileAsync(CancellationToken.None))
        {
            repairs.Add(repair);
        }

        return repairs;
    }

    private sealed class OtherHash : IRangeDigests
    {
        public string HashFunction => "other";

        public ValueTask<RangeDigest> DigestAsync(KeyRange range, CancellationToken cancellationToken) => throw new NotSupportedException();

        public ValueTask<DeltaSync.Core.Model.RecordKey?> KeyAtAsync(KeyRange range, long offset, CancellationToken cancellationToken) => throw new NotSupportedException();

        public ValueTask<IReadOnlyList<LeafRow>> LeafAsync(KeyRange range, CancellationToken cancellationToken) => throw new NotSupportedException();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
