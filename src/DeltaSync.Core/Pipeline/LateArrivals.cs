using System.Globalization;
using DeltaSync.Core.Model;
using DeltaSync.Core.Reporting;
using NodaTime;
using NodaTime.Text;

namespace DeltaSync.Core.Pipeline;

/// <summary>A record that arrived after the watermark had passed its event time.</summary>
/// <param name="EventTime">When the source says it changed (its commit or <c>updated_at</c> time).</param>
/// <param name="SeenAt">The stream's event time when it arrived: the newest event time seen before it.</param>
public readonly record struct LateArrival(RecordKey Key, Instant EventTime, Instant SeenAt)
{
    /// <summary>The spec's <c>late_arriving_data</c> entry.</summary>
    public LateArrivalReport ToReport(bool handled) => new(
        Key.ToString(),
        InstantPattern.ExtendedIso.Format(EventTime),
        InstantPattern.ExtendedIso.Format(SeenAt),
        Math.Round((SeenAt - EventTime).TotalSeconds, 3),
        handled);
}

/// <summary>
/// Event-time bookkeeping of one table's run (late-arriving data). The high-water mark is the newest event time applied;
/// the watermark trails it by the tolerance window and is kept in the checkpoint. A record applied now whose event time
/// is behind the newest one already seen arrived out of order; behind the watermark the previous run left, it arrived
/// later than the tolerance — it is still re-processed against the ledger (applied if it changes anything) and listed.
/// Neither the high-water mark nor the watermark runs ahead of the source's clock: a timestamp in the future (clock
/// skew) must not make every later record look late.
/// </summary>
public sealed class LateArrivals
{
    private readonly Duration _tolerance;
    private readonly Instant? _watermark;
    private readonly Instant _sourceNowAtStart;
    private readonly Instant _ourNowAtStart;
    private readonly IClock _clock;
    private Instant? _newest;

    /// <param name="tolerance">The table's <c>tolerance_window</c>.</param>
    /// <param name="resumedWatermark">The watermark of the checkpoint this run resumes from; null on a first or full read.</param>
    /// <param name="resumedHighWaterMark">That checkpoint's high-water mark.</param>
    /// <param name="sourceNow">The source's clock at the start of the run.</param>
    public LateArrivals(Duration tolerance, Instant? resumedWatermark, Instant? resumedHighWaterMark, Instant sourceNow, IClock clock)
    {
        ArgumentNullException.ThrowIfNull(clock);
        _tolerance = tolerance;
        _sourceNowAtStart = sourceNow;
        _clock = clock;
        _ourNowAtStart = clock.GetCurrentInstant();
        _watermark = resumedWatermark is { } w && w > sourceNow - tolerance ? sourceNow - tolerance : resumedWatermark;
        _newest = resumedHighWaterMark is { } h ? Min(h, sourceNow) : null;
    }

    /// <summary>The source's clock now, estimated from its reading at the start and our elapsed time.</summary>
    private Instant SourceNow => _sourceNowAtStart + (_clock.GetCurrentInstant() - _ourNowAtStart);

    /// <summary>
    /// Counts the out-of-order and late records among <paramref name="applied"/> (the changes that became writes, in
    /// order) and returns the late ones.
    /// </summary>
    public IReadOnlyList<LateArrival> Observe(IReadOnlyList<ChangeEvent> applied, TimeAndDeleteCounts counts)
    {
        ArgumentNullException.ThrowIfNull(applied);
        ArgumentNullException.ThrowIfNull(counts);
        List<LateArrival>? late = null;
        var now = SourceNow;
        foreach (var change in applied)
        {
            if (change.CommitTime is not { } at)
            {
                continue;
            }

            if (_watermark is { } watermark && at < watermark)
            {
                counts.Late++;
                (late ??= []).Add(new LateArrival(change.Key, at, _newest is { } seen && seen > watermark ? seen : watermark + _tolerance));
            }
            else if (_newest is { } newest && at < newest)
            {
                counts.OutOfOrder++;
            }

            var bounded = Min(at, now);
            if (_newest is null || bounded > _newest)
            {
                _newest = bounded;
            }
        }

        return late ?? (IReadOnlyList<LateArrival>)[];
    }

    /// <summary>The watermark to checkpoint for <paramref name="highWaterMark"/>: never ahead of the source's clock.</summary>
    public Instant? WatermarkAfter(Instant? highWaterMark) =>
        highWaterMark is { } h ? Min(h, SourceNow) - _tolerance : null;

    /// <summary>A duration as the report says it: "5 minutes", "90 s".</summary>
    public static string Describe(Duration duration) =>
        duration.TotalMinutes >= 1 && duration.TotalMinutes == Math.Floor(duration.TotalMinutes)
            ? string.Create(CultureInfo.InvariantCulture, $"{duration.TotalMinutes:0} minute{(duration.TotalMinutes == 1 ? "" : "s")}")
            : string.Create(CultureInfo.InvariantCulture, $"{duration.TotalSeconds:0.###} s");

    private static Instant Min(Instant a, Instant b) => a < b ? a : b;
}
