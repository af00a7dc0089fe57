using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;

namespace DeltaSync.Core.Capture;

/// <summary>How a source row is compared with what the ledger says was applied.</summary>
public enum DiffMode
{
    /// <summary>By row hash (polling CDC: nothing else tells a change).</summary>
    RowHash,
    /// <summary>By the per-row version value recorded as the ledger position (version CDC with a version field).</summary>
    Version,
}

/// <summary>
/// Finds inserts, updates and hard deletes by merging the source's rows, read in key order, with the ledger's entries
/// in the same order. Streams both sides: memory stays constant whatever the table size.
/// </summary>
public static class LedgerDiff
{
    /// <summary>The position kind under which per-row versions are kept in the ledger.</summary>
    public const string VersionKind = "version";

    /// <summary>The position kind of a completed diff pass (its value: when it ran, epoch milliseconds).</summary>
    public const string ScanKind = "scan";

    /// <summary>
    /// Merges <paramref name="sourceRows"/> (ascending by encoded key, strictly) with <paramref name="ledgerEntries"/>.
    /// Yields an upsert for every new or changed row and a delete for every live ledger key missing at the source.
    /// </summary>
    public static async IAsyncEnumerable<ChangeEvent> DiffAsync(
        IAsyncEnumerable<ChangeEvent> sourceRows,
        IAsyncEnumerable<LedgerEntry> ledgerEntries,
        DiffMode mode,
        string table,
        string source,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sourceRows);
        ArgumentNullException.ThrowIfNull(ledgerEntries);
        await using var ledger = ledgerEntries.GetAsyncEnumerator(cancellationToken);
        var ledgerHas = await ledger.MoveNextAsync().ConfigureAwait(false);
        RecordKey? previous = null;
        await foreach (var row in sourceRows.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            if (previous is not null && previous.CompareTo(row.Key) >= 0)
            {
                throw new InvalidOperationException(
                    $"table '{table}': the source returned key {row.Key} after {previous}; key order must match the ledger's byte order (check the key column's collation)");
            }

            previous = row.Key;
            while (ledgerHas && ledger.Current.Key.CompareTo(row.Key) < 0)
            {
                if (!ledger.Current.Deleted)
                {
                    yield return Deleted(ledger.Current, table, source);
                }

                ledgerHas = await ledger.MoveNextAsync().ConfigureAwait(false);
            }

            if (ledgerHas && ledger.Current.Key.Equals(row.Key))
            {
                var entry = ledger.Current;
                ledgerHas = await ledger.MoveNextAsync().ConfigureAwait(false);
                if (!entry.Deleted && !Changed(entry, row, mode))
                {
                    continue;
                }
            }

            yield return row;
        }

        while (ledgerHas)
        {
            if (!ledger.Current.Deleted)
            {
                yield return Deleted(ledger.Current, table, source);
            }

            ledgerHas = await ledger.MoveNextAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// One diff pass as capture batches: the changes between <paramref name="sourceRows"/> (the table in key order) and
    /// the stream's ledger, cut at the batch size. Batches keep the resume position; only the last, marking a complete
    /// pass, moves it on (a pass cut short is redone, the ledger keeps it idempotent). <paramref name="ledgerFilter"/>
    /// leaves out entries the source's connector knows cannot match a row read today.
    /// </summary>
    public static IAsyncEnumerable<ChangeBatch> PassAsync(
        IAsyncEnumerable<ChangeEvent> sourceRows,
        Connectors.CaptureRequest request,
        DiffMode mode,
        NodaTime.Instant now,
        CancellationToken cancellationToken,
        Func<IAsyncEnumerable<LedgerEntry>, IAsyncEnumerable<LedgerEntry>>? ledgerFilter = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        return PassAsync(
            (entries, token) => DiffAsync(sourceRows, entries, mode, request.Schema.Name, request.Plan.SourceName, token),
            request,
            now,
            cancellationToken,
            ledgerFilter);
    }

    private static async IAsyncEnumerable<ChangeBatch> BatchesAsync(
        IAsyncEnumerable<ChangeEvent> changes,
        Connectors.CaptureRequest request,
        NodaTime.Instant now,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var pass = new Position(ScanKind, now.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture));
        var batch = new List<ChangeEvent>(request.BatchSize);
        await foreach (var change in changes.ConfigureAwait(false))
        {
            batch.Add(change);
            if (batch.Count >= request.BatchSize)
            {
                yield return new ChangeBatch(request.Schema, batch, request.Resume.IsNone ? Position.None : request.Resume);
                batch = new List<ChangeEvent>(request.BatchSize);
            }
        }

        yield return new ChangeBatch(request.Schema, batch, pass);
    }

    /// <summary>
    /// A diff pass whose changes <paramref name="changes"/> makes itself from the stream's ledger (filtered by
    /// <paramref name="ledgerFilter"/>), cut into batches as <see cref="PassAsync(IAsyncEnumerable{ChangeEvent}, Connectors.CaptureRequest, DiffMode, NodaTime.Instant, CancellationToken, Func{IAsyncEnumerable{LedgerEntry}, IAsyncEnumerable{LedgerEntry}}?)"/>
    /// does: a source that compares by its own digests first and reads whole rows only for what differs.
    /// </summary>
    public static IAsyncEnumerable<ChangeBatch> PassAsync(
        Func<IAsyncEnumerable<LedgerEntry>, CancellationToken, IAsyncEnumerable<ChangeEvent>> changes,
        Connectors.CaptureRequest request,
        NodaTime.Instant now,
        CancellationToken cancellationToken,
        Func<IAsyncEnumerable<LedgerEntry>, IAsyncEnumerable<LedgerEntry>>? ledgerFilter = null)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentNullException.ThrowIfNull(request);
        var entries = request.Ledger.ScanAsync(request.Scope, cancellationToken);
        return BatchesAsync(changes(ledgerFilter is null ? entries : ledgerFilter(entries), cancellationToken), request, now, cancellationToken);
    }

    private static bool Changed(LedgerEntry entry, ChangeEvent row, DiffMode mode) => mode switch
    {
        // A row whose content changed without a version bump (or whose table gained a column) is still a change.
        DiffMode.Version => entry.Position.Kind != VersionKind || entry.Position.Value != row.Position.Value || !entry.HasContentOf(row),
        _ => !entry.HasContentOf(row),
    };

    private static ChangeEvent Deleted(LedgerEntry entry, string table, string source) =>
        new(table, entry.Key, ChangeOperation.Delete, null, Position.None, null, source);
}
