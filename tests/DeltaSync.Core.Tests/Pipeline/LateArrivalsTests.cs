using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using NodaTime;

namespace DeltaSync.Core.Tests.Pipeline;

public sealed class LateArrivalsTests
{
    private static readonly Instant Now = Instant.FromUtc(2026, 6, 1, 12, 0);
    private static readonly Duration Tolerance = Duration.FromMinutes(5);

    private sealed class FixedClock(Instant now) : IClock
    {
        public Instant GetCurrentInstant() => now;
    }

    private static ChangeEvent At(long id, Instant at) =>
        new("t", new RecordKey([id]), ChangeOperation.Upsert, [id], Position.None, at, "source");

    [Fact]
    public void Records_behind_the_newest_are_out_of_order_and_behind_the_watermark_are_late()
    {
        var hwm = Now - Duration.FromMinutes(1);
        var lateness = new LateArrivals(Tolerance, hwm - Tolerance, hwm, Now, new FixedClock(Now));
        var counts = new TimeAndDeleteCounts();

        var late = lateness.Observe([At(1, Now - Duration.FromSeconds(30)), At(2, hwm - Duration.FromMinutes(2)), At(3, hwm - Duration.FromMinutes(20)), At(4, Now)], counts);

        Assert.Equal(1, counts.OutOfOrder);
        Assert.Equal(1, counts.Late);
        var entry = Assert.Single(late);
        Assert.Equal(new RecordKey([3L]), entry.Key);
        var report = entry.ToReport(handled: true);
        // Seen when the stream stood at record 1 (30 s ago): 20.5 minutes late.
        Assert.Equal(1230, report.DelaySeconds);
        Assert.True(report.DelaySeconds > Tolerance.TotalSeconds);
    }

    [Fact]
    public void A_first_read_has_no_watermark_so_nothing_is_late()
    {
        var lateness = new LateArrivals(Tolerance, null, null, Now, new FixedClock(Now));
        var counts = new TimeAndDeleteCounts();

        Assert.Empty(lateness.Observe([At(1, Now - Duration.FromDays(30)), At(2, Now - Duration.FromDays(60))], counts));
        Assert.Equal(0, counts.Late);
    }

    [Fact]
    public void A_future_timestamp_moves_neither_the_watermark_nor_the_newest_past_the_source_clock()
    {
        var lateness = new LateArrivals(Tolerance, Now - Duration.FromMinutes(10), Now - Duration.FromMinutes(5), Now, new FixedClock(Now));
        var counts = new TimeAndDeleteCounts();

        lateness.Observe([At(1, Now + Duration.FromHours(2))], counts);
        lateness.Observe([At(2, Now - Duration.FromMinutes(1))], counts);

        Assert.Equal(Now - Tolerance, lateness.WatermarkAfter(Now + Duration.FromHours(2)));
        // One minute behind the (clamped) newest: out of order, not late.
        Assert.Equal(1, counts.OutOfOrder);
        Assert.Equal(0, counts.Late);
    }
}
