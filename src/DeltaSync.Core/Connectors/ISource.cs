using DeltaSync.Core.Config;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using NodaTime;

namespace DeltaSync.Core.Connectors;

/// <summary>A system changes are read from.</summary>
public interface ISource : IAsyncDisposable
{
    /// <summary>The capture methods this source supports.</summary>
    IReadOnlyCollection<CdcMethod> SupportedMethods { get; }

    /// <summary>Columns and primary key of a table; the key comes from the catalog unless the table options name it.</summary>
    Task<TableSchema> DescribeTableAsync(TableOptions table, CancellationToken cancellationToken);

    /// <summary>The source's own clock (cursor bounds are measured against it, never against ours).</summary>
    Task<Instant> GetClockAsync(CancellationToken cancellationToken);

    /// <summary>A capture for one table, resuming at <see cref="CaptureRequest.Resume"/>.</summary>
    IChangeCapture CreateCapture(CaptureRequest request);

    /// <summary>Removes what the engine installed at the source for a table (triggers, change rows) on <c>state reset</c>.</summary>
    Task UninstallAsync(TablePlan plan, CancellationToken cancellationToken);

    /// <summary>
    /// What <c>status</c> should say about the table's capture at the source (a replication slot's retained WAL, a
    /// change table's backlog); null when there is nothing beyond the checkpoint.
    /// </summary>
    Task<string?> DescribeCaptureAsync(TablePlan plan, CancellationToken cancellationToken) => Task.FromResult<string?>(null);

    /// <summary>
    /// The current rows of <paramref name="keys"/>, read again for <c>dlq replay</c> after a fix at the source. Key values
    /// may be in their portable form (as a dead letter's raw record holds them: long, double, string, bool). One result
    /// per key, in order: the key in the source's own values, and the row in schema column order as the captures read
    /// it, or null when no row has that key now.
    /// </summary>
    Task<IReadOnlyList<KeyedRow>> ReadRowsAsync(TableSchema schema, IReadOnlyList<RecordKey> keys, CancellationToken cancellationToken) =>
        throw new SyncException(ErrorClass.Fatal, $"this source cannot read rows by key, so the dead letters of '{schema?.Name}' cannot be replayed");

    /// <summary>
    /// The source time a checkpointed timestamp cursor stands at (each connector keeps its own unit), so a cursor ahead
    /// of the source's clock can be recognised before resuming; null when the position is no timestamp cursor.
    /// </summary>
    Instant? CursorTime(Position position) => null;

    /// <summary>
    /// The table's key-range digests for reconciliation (<see cref="Capture.RangeReconciler"/>), computed inside the
    /// source; null when this source cannot compute them (reconciliation then compares every row).
    /// </summary>
    Task<IRangeDigests?> OpenRangeDigestsAsync(TableSchema schema, CancellationToken cancellationToken) => Task.FromResult<IRangeDigests?>(null);
}

/// <summary>A row read back by key (<see cref="ISource.ReadRowsAsync"/>).</summary>
/// <param name="Key">The key, in the source's own values (what the captures put in the ledger).</param>
/// <param name="Values">The row in schema column order; null when the source has no row with that key.</param>
public sealed record KeyedRow(RecordKey Key, object?[]? Values);
