using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;

namespace DeltaSync.Core.Connectors;

/// <summary>What one applied batch changed at the destination (real writes only).</summary>
/// <param name="AlreadyApplied">The unit's idempotency key was already recorded: its writes were skipped.</param>
/// <param name="ChildrenDeleted">Rows of child tables deleted by a cascade from this unit's deletes.</param>
/// <param name="ChildrenNulled">Rows of child tables whose foreign key was set to NULL by this unit's deletes.</param>
public readonly record struct ApplyResult(long Inserted, long Updated, long Deleted, bool AlreadyApplied = false, long ChildrenDeleted = 0, long ChildrenNulled = 0);

/// <summary>A system changes are written to. It hosts the ledger so data, ledger and checkpoint commit together.</summary>
public interface IDestination : IAsyncDisposable
{
    ILedger Ledger { get; }

    /// <summary>
    /// Creates the table from the source schema when missing, adds columns the source gained and (where the destination
    /// can) widens columns whose type the source widened. Returns what changed in an existing table: rows synced before
    /// then may lack values, or may have been refused by the narrower column.
    /// </summary>
    Task<TableEvolution> PrepareTableAsync(string destinationTable, TableSchema sourceSchema, CancellationToken cancellationToken);

    /// <summary>Applies one unit atomically: rows, ledger entries and the committed checkpoint.</summary>
    Task<ApplyResult> ApplyAsync(ApplyUnit unit, CancellationToken cancellationToken);

    /// <summary>The checkpoint payload committed with the data for a stream, if any (exactly-once recovery).</summary>
    Task<string?> ReadCommittedCheckpointAsync(string stream, CancellationToken cancellationToken);

    /// <summary>Forgets a stream: its ledger scope and committed checkpoint (the data stays).</summary>
    Task ResetStreamAsync(string stream, LedgerScope scope, CancellationToken cancellationToken);

    /// <summary>
    /// Key-range digests of <paramref name="destinationTable"/> over the source's columns in source column order
    /// (<paramref name="sourceSchema"/>), for reconciliation; null when this destination cannot compute them.
    /// </summary>
    Task<IRangeDigests?> OpenRangeDigestsAsync(string destinationTable, TableSchema sourceSchema, CancellationToken cancellationToken) => Task.FromResult<IRangeDigests?>(null);

    /// <summary>
    /// Loads a whole table from <paramref name="source"/> into an empty destination table in one transaction with its
    /// ledger entries and the checkpoint, when this destination can do that faster than the pipeline (the same kind of
    /// system, matching column types); otherwise returns why not, having written nothing, and the pipeline loads it.
    /// </summary>
    Task<BulkLoadOutcome> TryBulkLoadAsync(ISource source, BulkLoadRequest request, CancellationToken cancellationToken) =>
        Task.FromResult(BulkLoadOutcome.Skipped("this destination has no bulk load"));

    /// <summary>
    /// Whether a state store at <paramref name="stateConnection"/> (resolved from <paramref name="baseDirectory"/>) is
    /// this destination's own storage in a way that lets a batch block it: a SQLite destination whose state store is
    /// its very file (by any path to it). Then nothing may write the store while a batch holds the destination's writer,
    /// and a batch's conflict log is written before the batch instead of beside it.
    /// </summary>
    bool SharesStorageWith(string stateConnection, string baseDirectory) => false;

    /// <summary>
    /// For conflict detection between several sources: per key, the stored record base (<see cref="ApplyUnit.RecordBases"/>)
    /// and the row the destination holds now (every column by name; null when absent) — one batched read. Keys with
    /// neither are missing from the result.
    /// </summary>
    Task<IReadOnlyDictionary<RecordKey, StoredRecord>> ReadRecordsAsync(string destinationTable, TableSchema schema, IReadOnlyCollection<RecordKey> keys, CancellationToken cancellationToken) =>
        throw new SyncException(ErrorClass.Fatal, $"this destination cannot keep record bases, so '{destinationTable}' cannot be written by several sources (conflict detection needs them)");

    /// <summary>
    /// <see cref="ReadRecordsAsync(string, TableSchema, IReadOnlyCollection{RecordKey}, CancellationToken)"/> for only
    /// the <paramref name="parts"/> wanted (the other part is left null): the fast merge reads the rows of a whole batch
    /// and the bases of only the records it cannot take past. Destinations that cannot read one part alone read both.
    /// </summary>
    Task<IReadOnlyDictionary<RecordKey, StoredRecord>> ReadRecordsAsync(string destinationTable, TableSchema schema, IReadOnlyCollection<RecordKey> keys, RecordParts parts, CancellationToken cancellationToken) =>
        ReadRecordsAsync(destinationTable, schema, keys, cancellationToken);

    /// <summary>
    /// Per key, the <see cref="MergedRowDigest"/> of the row the destination holds now (absent keys are missing): all the
    /// fast merge needs of a record's row. Destinations that cannot compute it in place read the rows.
    /// </summary>
    async Task<IReadOnlyDictionary<RecordKey, long>> ReadRowDigestsAsync(string destinationTable, TableSchema schema, IReadOnlyCollection<RecordKey> keys, CancellationToken cancellationToken)
    {
        var rows = await ReadRecordsAsync(destinationTable, schema, keys, RecordParts.Rows, cancellationToken).ConfigureAwait(false);
        var digests = new Dictionary<RecordKey, long>(rows.Count);
        foreach (var (key, stored) in rows)
        {
            if (stored.Row is { } row)
            {
                digests[key] = MergedRowDigest.Of(schema, row);
            }
        }

        return digests;
    }

    /// <summary>
    /// Writes record bases on their own, in one transaction (a source's fast-merged versions folded into the bases
    /// before its ledger scope is reset). Destinations whose ledger keeps no merge state never have any to write.
    /// </summary>
    Task WriteRecordBasesAsync(string destinationTable, IReadOnlyList<RecordBaseWrite> bases, CancellationToken cancellationToken) =>
        bases.Count == 0 ? Task.CompletedTask : throw new NotSupportedException("this destination keeps no merge states, so it has no record bases to fold them into");

    /// <summary>
    /// The merge epoch of a table several sources write (see <see cref="Conflicts.SourceMergeState"/>), moved on first
    /// when <paramref name="advance"/>: a run that cannot vouch for the sources' fast-merge states (its policy may hold
    /// fields, a review changed a record) advances it, and every state written under an earlier epoch stops counting.
    /// Null when the destination keeps no epoch: then no fast merge is taken.
    /// </summary>
    Task<long?> MergeEpochAsync(string destinationTable, bool advance, CancellationToken cancellationToken) => Task.FromResult<long?>(null);
}

/// <summary>Which parts of a stored record <see cref="IDestination.ReadRecordsAsync(string, TableSchema, IReadOnlyCollection{RecordKey}, RecordParts, CancellationToken)"/> reads.</summary>
[Flags]
public enum RecordParts
{
    /// <summary>The stored record base.</summary>
    Bases = 1,

    /// <summary>The destination's current row.</summary>
    Rows = 2,

    /// <summary>Both.</summary>
    Both = Bases | Rows,
}

/// <summary>
/// What the destination holds for one record: its stored merge state as UTF-8 <see cref="Conflicts.RecordBaseCodec"/>
/// text (null when none yet; bytes, so it is neither decoded into a string nor encoded again to be parsed) and its
/// current row (null when absent).
/// </summary>
public sealed record StoredRecord(byte[]? Base, IReadOnlyDictionary<string, object?>? Row);
