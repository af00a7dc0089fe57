using System.Globalization;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using NodaTime;

namespace DeltaSync.Core.Pipeline;

/// <summary>
/// What one run of a timestamp-CDC table did with timestamps that were not plain (issue 6): rows without updated_at
/// (ordered by created_at, or compared by row hash), zone-less values resolved across a DST change, and rows stamped
/// in the future.
/// </summary>
public sealed record TimestampCounts(long CreatedAtFallback, long RowHash, long DstGap, long DstOverlap, long Future);

/// <summary>The run's running totals behind <see cref="TimestampCounts"/>, and the warnings they make.</summary>
internal sealed class TimestampTally
{
    public long CreatedAtFallback { get; set; }
    public long RowHash { get; set; }
    public long DstGap { get; set; }
    public long DstOverlap { get; set; }
    public long Future { get; set; }
    public Instant? NewestFuture { get; set; }

    public TimestampCounts ToCounts() => new(CreatedAtFallback, RowHash, DstGap, DstOverlap, Future);

    /// <summary>One warning per kind of irregular timestamp this run met (the NULL-by-row-hash one is the pipeline's own).</summary>
    public IEnumerable<string> Warnings(TablePlan plan, Duration maxFutureSkew)
    {
        if (CreatedAtFallback > 0)
        {
            yield return $"{plan.Table}: {CreatedAtFallback} row(s) have NULL {plan.UpdatedAtField}; their {plan.CreatedAtField} was used as commit time and cursor order instead";
        }

        if (DstGap + DstOverlap > 0)
        {
            yield return $"{plan.Table}: {DstGap + DstOverlap} zone-less timestamp(s) fell in a DST gap or overlap in {plan.Timezone} and were resolved " +
                $"(gap: {DstGap}, shifted forward by the gap's length; overlap: {DstOverlap}, earlier offset)";
        }

        if (Future > 0)
        {
            var newest = NewestFuture is { } n ? n.ToString("uuuu'-'MM'-'dd'T'HH':'mm':'ss;FFFFFFFFF'Z'", CultureInfo.InvariantCulture) : "?";
            yield return $"{plan.Table}: {Future} row(s) have {plan.UpdatedAtField} more than max_future_skew ({maxFutureSkew.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s) ahead of the source's clock " +
                $"(newest {newest}); they were applied, and the cursor stays at the source's clock minus safety_margin";
        }
    }
}

/// <summary>Counts changes whose commit time is more than the allowed skew ahead of the source's clock.</summary>
internal sealed class FutureTimestampCounter(Instant sourceNow, IClock local, Duration maxFutureSkew)
{
    private readonly Instant _localStart = local.GetCurrentInstant();

    public void Count(ChangeBatch batch, TimestampTally tally)
    {
        var limit = sourceNow + (local.GetCurrentInstant() - _localStart) + maxFutureSkew;
        foreach (var change in batch.Events)
        {
            if (change.CommitTime is { } at && at > limit)
            {
                tally.Future++;
                if (tally.NewestFuture is null || at > tally.NewestFuture)
                {
                    tally.NewestFuture = at;
                }
            }
        }
    }
}
