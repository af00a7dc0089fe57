using NodaTime;

namespace DeltaSync.Core.Model;

/// <summary>
/// One change to one record, as captured from a source.
/// </summary>
/// <param name="Table">The source table.</param>
/// <param name="Key">The record's primary key.</param>
/// <param name="Operation">What happened.</param>
/// <param name="Values">The new row in the table schema's column order (null for deletes).</param>
/// <param name="Position">Where this change sits in the source's order.</param>
/// <param name="CommitTime">When the source says the change happened, by the source's own clock (null when unknown).</param>
/// <param name="Source">The name of the source that produced the change.</param>
public sealed record ChangeEvent(
    string Table,
    RecordKey Key,
    ChangeOperation Operation,
    object?[]? Values,
    Position Position,
    Instant? CommitTime,
    string Source)
{
    /// <summary>The row hash of <see cref="Values"/>, computed once by the capture (0 for deletes).</summary>
    public long RowHash { get; init; }

    /// <summary>
    /// A digest of the row computed by the source system itself (PostgreSQL: over the binary form of its columns), when
    /// the capture was asked for one (<see cref="Connectors.CaptureRequest.SourceDigests"/>); compared with ledger entries
    /// a bulk load wrote (<see cref="Ledger.LedgerEntry.HashIsSourceDigest"/>). Null when not computed.
    /// </summary>
    public long? SourceDigest { get; init; }
}
