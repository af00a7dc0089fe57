using DeltaSync.Core.Model;

namespace DeltaSync.Core.Ledger;

/// <summary>
/// Read side of the ledger for one destination. The ledger lives with the destination so that data, ledger and
/// checkpoint commit in one transaction; writes go through <see cref="Pipeline.ApplyUnit"/>.
/// Look-ups are batched: one call per batch, never one per record.
/// </summary>
public interface ILedger
{
    /// <summary>The entries for <paramref name="keys"/> (absent keys are missing from the result).</summary>
    ValueTask<IReadOnlyDictionary<RecordKey, LedgerEntry>> LookupAsync(LedgerScope scope, IReadOnlyCollection<RecordKey> keys, CancellationToken cancellationToken);

    /// <summary>Every entry of a scope in key order (byte order of <see cref="RecordKey.Encoded"/>), streamed.</summary>
    IAsyncEnumerable<LedgerEntry> ScanAsync(LedgerScope scope, CancellationToken cancellationToken);

    /// <summary>Whether entries of the scope may hold source digests (<see cref="LedgerEntry.HashIsSourceDigest"/>).</summary>
    ValueTask<bool> HasSourceDigestsAsync(LedgerScope scope, CancellationToken cancellationToken) => ValueTask.FromResult(false);

    /// <summary>
    /// Whether entries keep <see cref="LedgerEntry.MergeState"/> (written and read back with the entry). Where they do
    /// not, every record of a table several sources write takes the conflict path's full merge.
    /// </summary>
    bool KeepsMergeState => false;
}

/// <summary>The part of the ledger one stream owns: a destination table and the source writing to it.</summary>
public readonly record struct LedgerScope(string DestinationTable, string Source);
