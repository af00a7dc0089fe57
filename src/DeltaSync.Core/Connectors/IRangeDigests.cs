using DeltaSync.Core.Model;

namespace DeltaSync.Core.Connectors;

/// <summary>
/// A key range <c>(Low, High]</c> in primary-key order; a null bound is unbounded. Bounds are keys as one of the two
/// sides returned them (<see cref="IRangeDigests.KeyAtAsync"/>), so both sides cut the key space at the same places.
/// </summary>
public sealed record KeyRange(RecordKey? Low, RecordKey? High)
{
    /// <summary>Every key.</summary>
    public static KeyRange All { get; } = new(null, null);

    public override string ToString() => $"({Low?.ToString() ?? "-∞"}, {High?.ToString() ?? "+∞"}]";
}

/// <summary>
/// What one side holds in a key range: the row count and an order-independent 64-bit digest (the wrapping sum of
/// the per-row hashes), both computed inside the database.
/// </summary>
public readonly record struct RangeDigest(long Rows, long Digest);

/// <summary>One row of a small range: its key and the per-row hash the digests sum.</summary>
public readonly record struct LeafRow(RecordKey Key, long Hash);

/// <summary>
/// One side of a table (source or destination) as key-range digests, for reconciliation by bisection
/// (<see cref="Capture.RangeReconciler"/>). Both sides must hash the same projection (the source table's columns, in
/// source column order) with the same function: <see cref="HashFunction"/> names it, and only equal names are compared.
/// </summary>
public interface IRangeDigests : IAsyncDisposable
{
    /// <summary>
    /// The per-row hash and its projection's encoding (<c>sqlite-xxhash64-v1</c>, <c>postgresql-hashtextextended-v1</c>).
    /// Two sides with different functions cannot be compared by digests.
    /// </summary>
    string HashFunction { get; }

    /// <summary>Count and digest of the rows in <paramref name="range"/>.</summary>
    ValueTask<RangeDigest> DigestAsync(KeyRange range, CancellationToken cancellationToken);

    /// <summary>
    /// The key of the row <paramref name="offset"/> rows into <paramref name="range"/> (0 = its first row), in key
    /// order; null when the range has no such row (it shrank since it was counted).
    /// </summary>
    ValueTask<RecordKey?> KeyAtAsync(KeyRange range, long offset, CancellationToken cancellationToken);

    /// <summary>Every row of a (small) range: key and per-row hash.</summary>
    ValueTask<IReadOnlyList<LeafRow>> LeafAsync(KeyRange range, CancellationToken cancellationToken);
}
