namespace DeltaSync.Core.Capture;

/// <summary>
/// What one key-range reconciliation compared and transferred. Bytes are the payload read from the two databases:
/// 16 bytes per digest, a leaf row's key and hash, and the values of every row read in full for a repair.
/// </summary>
/// <param name="RangesCompared">Key ranges whose digests were compared.</param>
/// <param name="RangesDiffering">Of those, ranges whose digests differed (each was split or read as a leaf).</param>
/// <param name="RowsFetched">Leaf rows read from either side plus source rows read in full.</param>
/// <param name="BytesFetched">Estimated payload bytes of everything read (digests, split keys, leaf rows, full rows).</param>
/// <param name="RowsUpserted">Repairs: rows missing or different at the destination, written from the source.</param>
/// <param name="RowsDeleted">Repairs: keys at the destination that the source no longer has.</param>
public sealed record ReconciliationStats(
    long RangesCompared,
    long RangesDiffering,
    long RowsFetched,
    long BytesFetched,
    long RowsUpserted,
    long RowsDeleted)
{
    public static ReconciliationStats Zero { get; } = new(0, 0, 0, 0, 0, 0);

    public ReconciliationStats Add(ReconciliationStats other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return new(
            RangesCompared + other.RangesCompared,
            RangesDiffering + other.RangesDiffering,
            RowsFetched + other.RowsFetched,
            BytesFetched + other.BytesFetched,
            RowsUpserted + other.RowsUpserted,
            RowsDeleted + other.RowsDeleted);
    }
}
