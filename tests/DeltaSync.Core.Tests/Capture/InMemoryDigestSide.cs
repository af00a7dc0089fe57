using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;

namespace DeltaSync.Core.Tests.Capture;

/// <summary>A table side held in memory: key → value, digests as the wrapping sum of per-row hashes.</summary>
internal sealed class InMemoryDigestSide : IRangeDigests
{
    public InMemoryDigestSide(IEnumerable<KeyValuePair<long, long>> rows)
    {
        foreach (var (key, value) in rows)
        {
            Rows[key] = value;
        }
    }

    public SortedDictionary<long, long> Rows { get; } = [];

    public string HashFunction => "in-memory";

    public int LeafRowsRead { get; private set; }

    public int Digests { get; private set; }

    public static long RowHash(long key, long value)
    {
        // splitmix64 over the pair: any good 64-bit mix will do, the reconciler only adds and compares them.
        var z = unchecked((ulong)key * 0x9E3779B97F4A7C15UL + (ulong)value);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return (long)(z ^ (z >> 31));
    }

    public ValueTask<RangeDigest> DigestAsync(KeyRange range, CancellationToken cancellationToken)
    {
        Digests++;
        long count = 0, sum = 0;
        foreach (var (key, value) in In(range))
        {
            count++;
            sum = unchecked(sum + RowHash(key, value));
        }

        return ValueTask.FromResult(new RangeDigest(count, sum));
    }

    public ValueTask<RecordKey?> KeyAtAsync(KeyRange range, long offset, CancellationToken cancellationToken) =>
        ValueTask.FromResult(In(range).Skip((int)offset).Select(r => (RecordKey?)Key(r.Key)).FirstOrDefault());

    public ValueTask<IReadOnlyList<LeafRow>> LeafAsync(KeyRange range, CancellationToken cancellationToken)
    {
        var rows = In(range).Select(r => new LeafRow(Key(r.Key), RowHash(r.Key, r.Value))).ToList();
        LeafRowsRead += rows.Count;
        return ValueTask.FromResult<IReadOnlyList<LeafRow>>(rows);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    public static RecordKey Key(long key) => new([key]);

    private IEnumerable<KeyValuePair<long, long>> In(KeyRange range)
    {
        var low = range.Low is null ? (long?)null : (long)range.Low.Values[0]!;
        var high = range.High is null ? (long?)null : (long)range.High.Values[0]!;
        return Rows.Where(r => (low is null || r.Key > low) && (high is null || r.Key <= high));
    }
}
