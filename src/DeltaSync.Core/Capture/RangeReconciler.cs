using System.Runtime.CompilerServices;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;

namespace DeltaSync.Core.Capture;

/// <summary>How finely key-range reconciliation cuts the table (<c>cdc.hybrid.ranges</c>, <c>cdc.hybrid.leaf_rows</c>).</summary>
/// <param name="Ranges">Top-level ranges a differing table is cut into (each differing one is then halved).</param>
/// <param name="LeafRows">A differing range with at most this many rows on either side is read row by row.</param>
public sealed record RangeReconcileOptions(int Ranges = RangeReconcileOptions.DefaultRanges, int LeafRows = RangeReconcileOptions.DefaultLeafRows)
{
    public const int DefaultRanges = 16;
    public const int DefaultLeafRows = 256;
}

/// <summary>What one differing leaf range needs: keys to write from the source, keys to delete at the destination.</summary>
public sealed record RangeRepair(KeyRange Range, IReadOnlyList<RecordKey> Upserts, IReadOnlyList<RecordKey> Deletes);

/// <summary>
/// Compares a source and a destination table by key-range digests computed inside each database, and bisects only
/// the ranges whose digests differ, down to leaves of at most <see cref="RangeReconcileOptions.LeafRows"/> rows, which
/// are compared row by row (key and per-row hash). With d drifted rows in an n-row table it reads about
/// <c>ranges + 2·d·log₂(n / ranges / leaf)</c> digests and at most <c>2·d·leaf</c> leaf rows, never every key.
/// Side-agnostic: a range is cut where the side holding more of its rows says (so a range the source emptied is
/// still split by the destination's keys), and the sides only ever exchange keys.
/// </summary>
public sealed class RangeReconciler
{
    private const int DigestBytes = 16;
    private const int HashBytes = 8;

    private readonly IRangeDigests _source;
    private readonly IRangeDigests _destination;
    private readonly RangeReconcileOptions _options;

    public RangeReconciler(IRangeDigests source, IRangeDigests destination, RangeReconcileOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(options);
        if (source.HashFunction != destination.HashFunction)
        {
            throw new ArgumentException($"the sides hash rows differently ({source.HashFunction} vs {destination.HashFunction}); their digests cannot be compared", nameof(destination));
        }

        _source = source;
        _destination = destination;
        _options = options with { Ranges = Math.Max(2, options.Ranges), LeafRows = Math.Max(1, options.LeafRows) };
    }

    /// <summary>Ranges whose digests were compared so far.</summary>
    public long RangesCompared { get; private set; }

    /// <summary>Compared ranges whose digests differed.</summary>
    public long RangesDiffering { get; private set; }

    /// <summary>Leaf rows (key and hash) read from both sides.</summary>
    public long LeafRowsFetched { get; private set; }

    /// <summary>Estimated payload bytes read: digests, split keys, leaf rows.</summary>
    public long BytesFetched { get; private set; }

    /// <summary>The repairs, one per differing leaf range, in key order.</summary>
    public async IAsyncEnumerable<RangeRepair> ReconcileAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var (source, destination) = await DigestBothAsync(KeyRange.All, cancellationToken).ConfigureAwait(false);
        if (source == destination)
        {
            yield break;
        }

        // Depth first, children pushed in reverse: leaves come out in key order and the stack stays O(depth · ranges).
        var pending = new Stack<(KeyRange Range, RangeDigest Source, RangeDigest Destination, int Parts)>();
        pending.Push((KeyRange.All, source, destination, _options.Ranges));
        while (pending.Count > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (range, s, d, parts) = pending.Pop();
            RangesDiffering++;
            var children = Math.Max(s.Rows, d.Rows) <= _options.LeafRows
                ? []
                : await SplitAsync(range, s.Rows >= d.Rows ? _source : _destination, Math.Max(s.Rows, d.Rows), parts, cancellationToken).ConfigureAwait(false);
            if (children.Count == 0)
            {
                if (await CompareLeafAsync(range, cancellationToken).ConfigureAwait(false) is { } repair)
                {
                    yield return repair;
                }

                continue;
            }

            var differing = new List<(KeyRange, RangeDigest, RangeDigest, int)>(children.Count);
            foreach (var child in children)
            {
                var (cs, cd) = await DigestBothAsync(child, cancellationToken).ConfigureAwait(false);
                if (cs != cd)
                {
                    differing.Add((child, cs, cd, 2));
                }
            }

            for (var i = differing.Count - 1; i >= 0; i--)
            {
                pending.Push(differing[i]);
            }
        }
    }

    /// <summary>
    /// Cuts <paramref name="range"/> into up to <paramref name="parts"/> ranges of about equal row counts on
    /// <paramref name="side"/>; none when it cannot be cut (its rows vanished meanwhile).
    /// </summary>
    private async Task<IReadOnlyList<KeyRange>> SplitAsync(KeyRange range, IRangeDigests side, long rows, int parts, CancellationToken cancellationToken)
    {
        var bounds = new List<RecordKey>(parts - 1);
        for (var i = 1; i < parts; i++)
        {
            var offset = (rows * i / parts) - 1;
            if (offset < 0)
            {
                continue;
            }

            var key = await side.KeyAtAsync(range, offset, cancellationToken).ConfigureAwait(false);
            if (key is null)
            {
                break;
            }

            BytesFetched += key.Encoded.Length;
            // Offsets grow, so keys do; equal or out-of-range keys only appear when the side changed meanwhile.
            if ((bounds.Count > 0 && bounds[^1].Equals(key)) || key.Equals(range.High))
            {
                continue;
            }

            bounds.Add(key);
        }

        if (bounds.Count == 0)
        {
            return [];
        }

        var ranges = new List<KeyRange>(bounds.Count + 1);
        var low = range.Low;
        foreach (var bound in bounds)
        {
            ranges.Add(new KeyRange(low, bound));
            low = bound;
        }

        ranges.Add(new KeyRange(low, range.High));
        return ranges;
    }

    private async Task<RangeRepair?> CompareLeafAsync(KeyRange range, CancellationToken cancellationToken)
    {
        var sourceTask = Task.Run(async () => await _source.LeafAsync(range, cancellationToken).ConfigureAwait(false), cancellationToken);
        var destination = await _destination.LeafAsync(range, cancellationToken).ConfigureAwait(false);
        var source = await sourceTask.ConfigureAwait(false);
        LeafRowsFetched += source.Count + destination.Count;
        BytesFetched += source.Sum(r => (long)r.Key.Encoded.Length + HashBytes) + destination.Sum(r => (long)r.Key.Encoded.Length + HashBytes);

        var held = new Dictionary<RecordKey, long>(destination.Count);
        foreach (var row in destination)
        {
            held[row.Key] = row.Hash;
        }

        var upserts = new List<RecordKey>();
        foreach (var row in source)
        {
            if (!held.Remove(row.Key, out var hash) || hash != row.Hash)
            {
                upserts.Add(row.Key);
            }
        }

        // What is left the destination holds and the source does not.
        var deletes = destination.Where(r => held.ContainsKey(r.Key)).Select(r => r.Key).ToList();
        return upserts.Count == 0 && deletes.Count == 0 ? null : new RangeRepair(range, upserts, deletes);
    }

    private async Task<(RangeDigest Source, RangeDigest Destination)> DigestBothAsync(KeyRange range, CancellationToken cancellationToken)
    {
        // The two databases work at the same time: a digest is a scan of the range on each side.
        var sourceTask = Task.Run(async () => await _source.DigestAsync(range, cancellationToken).ConfigureAwait(false), cancellationToken);
        var destination = await _destination.DigestAsync(range, cancellationToken).ConfigureAwait(false);
        var source = await sourceTask.ConfigureAwait(false);
        RangesCompared++;
        BytesFetched += 2 * DigestBytes;
        return (source, destination);
    }
}
