using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;

namespace DeltaSync.Core.Capture;

/// <summary>
/// One reconciliation of a table as capture batches: both sides' range digests (<see cref="RangeReconciler"/>), the
/// rows of differing leaves read in full from the source by key, and the repairs as <see cref="ChangeBatch.Repair"/>
/// batches that go through the ordinary resolve/apply path. Every batch keeps the checkpoint position it is given;
/// the last carries the figures (<see cref="ChangeBatch.Reconciliation"/>).
/// </summary>
public static class RangeReconciliation
{
    /// <summary>
    /// Opens both sides' digests, or says why they cannot be compared (the pipeline gave no destination accessor,
    /// a side does not offer digests, or the two hash rows differently: only same-engine pairs can).
    /// </summary>
    public static async Task<(IRangeDigests? Source, IRangeDigests? Destination, string? Unavailable)> OpenAsync(
        ISource source, CaptureRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(request);
        if (request.DestinationDigests is null)
        {
            return (null, null, "the destination's digests are not reachable from this capture");
        }

        var sourceDigests = await source.OpenRangeDigestsAsync(request.Schema, cancellationToken).ConfigureAwait(false);
        if (sourceDigests is null)
        {
            return (null, null, "the source cannot compute key-range digests");
        }

        IRangeDigests? destination = null;
        try
        {
            destination = await request.DestinationDigests(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (destination is null)
            {
                await sourceDigests.DisposeAsync().ConfigureAwait(false);
            }
        }

        if (destination is null)
        {
            return (null, null, "the destination cannot compute key-range digests");
        }

        if (destination.HashFunction != sourceDigests.HashFunction)
        {
            var why = $"source and destination hash rows differently ({sourceDigests.HashFunction} vs {destination.HashFunction}; only same-engine pairs compare digests)";
            await sourceDigests.DisposeAsync().ConfigureAwait(false);
            await destination.DisposeAsync().ConfigureAwait(false);
            return (null, null, why);
        }

        return (sourceDigests, destination, null);
    }

    /// <summary>The reconciliation's batches; disposes both sides' digests when done.</summary>
    public static async IAsyncEnumerable<ChangeBatch> PassAsync(
        ISource source,
        IRangeDigests sourceDigests,
        IRangeDigests destinationDigests,
        CaptureRequest request,
        RangeReconcileOptions options,
        Position checkpoint,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(request);
        await using var sourceSide = sourceDigests;
        await using var destinationSide = destinationDigests;
        var schema = request.Schema;
        var origin = request.Plan.SourceName;
        var reconciler = new RangeReconciler(sourceDigests, destinationDigests, options);
        var batch = new List<ChangeEvent>(request.BatchSize);
        // A repaired row's event time is its updated_at where it has one: a row that reconciliation had to find
        // arrived later than the tolerance window, and late-arrival reporting needs its time.
        var timeIndex = schema.IndexOf(request.Plan.UpdatedAtField);
        var zone = Time.TimeZones.Get(request.Plan.Timezone);
        long rowsRead = 0, bytesRead = 0, upserts = 0, deletes = 0;
        await foreach (var repair in reconciler.ReconcileAsync(cancellationToken).ConfigureAwait(false))
        {
            if (repair.Upserts.Count > 0)
            {
                foreach (var row in await source.ReadRowsAsync(schema, repair.Upserts, cancellationToken).ConfigureAwait(false))
                {
                    if (row.Values is null)
                    {
                        // Gone since its leaf was read: deleted meanwhile, so it goes at the destination too.
                        batch.Add(RowChanges.Delete(schema, origin, row.Key, Position.None, null));
                        deletes++;
                        continue;
                    }

                    rowsRead++;
                    bytesRead += RowBytes(row.Values);
                    NodaTime.Instant? at = timeIndex >= 0 && Time.SourceTimestamp.TryParse(row.Values[timeIndex], zone, out var instant, out _) ? instant : null;
                    batch.Add(RowChanges.Upsert(schema, origin, row.Values, Position.None, at));
                    upserts++;
                }
            }

            foreach (var key in repair.Deletes)
            {
                batch.Add(RowChanges.Delete(schema, origin, key, Position.None, null));
                deletes++;
            }

            if (batch.Count >= request.BatchSize)
            {
                yield return new ChangeBatch(schema, batch, checkpoint) { Repair = true };
                batch = new List<ChangeEvent>(request.BatchSize);
            }
        }

        var stats = new ReconciliationStats(
            reconciler.RangesCompared,
            reconciler.RangesDiffering,
            reconciler.LeafRowsFetched + rowsRead,
            reconciler.BytesFetched + bytesRead,
            upserts,
            deletes);
        yield return new ChangeBatch(schema, batch, checkpoint)
        {
            Repair = true,
            Reconciliation = stats,
            Warnings = [Describe(request.Plan.Table, stats)],
        };
    }

    /// <summary>The report line of one reconciliation.</summary>
    public static string Describe(string table, ReconciliationStats stats)
    {
        ArgumentNullException.ThrowIfNull(stats);
        return string.Create(
            CultureInfo.InvariantCulture,
            $"'{table}' was reconciled with the destination by key-range digests: {stats.RangesCompared} range(s) compared, {stats.RangesDiffering} differed, {stats.RowsFetched} row(s) and {stats.BytesFetched} byte(s) fetched, {stats.RowsUpserted} row(s) rewritten and {stats.RowsDeleted} deleted");
    }

    /// <summary>A row's payload size as read: 8 bytes per number, the UTF-8 length of text, the length of a blob.</summary>
    public static long RowBytes(IReadOnlyList<object?> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        long bytes = 0;
        foreach (var value in values)
        {
            bytes += value switch
            {
                null => 1,
                string s => Encoding.UTF8.GetByteCount(s),
                byte[] b => b.Length,
                long or double or DateTime or DateTimeOffset or decimal => 8,
                int or float => 4,
                short => 2,
                bool or byte => 1,
                Guid => 16,
                _ => Encoding.UTF8.GetByteCount(PortableValue.ToText(value) ?? ""),
            };
        }

        return bytes;
    }
}
