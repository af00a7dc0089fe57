using System.Globalization;
using DeltaSync.Core.Time;
using FsCheck;
using FsCheck.Fluent;
using NodaTime;

namespace DeltaSync.Core.Tests.Time;

public sealed class SourceTimestampTests
{
    private static readonly Instant Expected = Instant.FromUtc(2024, 1, 15, 10, 0, 0) + Duration.FromMilliseconds(123);

    [Theory]
    [InlineData("2024-01-15T10:00:00.123Z")]
    [InlineData("2024-01-15 10:00:00.123")]
    [InlineData("2024-01-15T12:00:00.123+02:00")]
    [InlineData("2024-01-15T05:30:00.123-04:30")]
    [InlineData("2024-01-15T12:00:00.123+0200")]
    [InlineData("2024-01-15T12:00:00.123+02")]
    [InlineData("1705312800123")]
    public void Supported_text_shapes_read_as_the_same_instant(string text)
    {
        Assert.True(SourceTimestamp.TryParse(text, DateTimeZone.Utc, out var instant, out var problem), problem);
        Assert.Equal(Expected, instant);
    }

    [Fact]
    public void Epoch_numbers_are_seconds_below_the_threshold_and_milliseconds_above()
    {
        Assert.True(SourceTimestamp.TryParse(1705312800L, DateTimeZone.Utc, out var seconds, out _));
        Assert.True(SourceTimestamp.TryParse(1705312800123L, DateTimeZone.Utc, out var milliseconds, out _));
        Assert.Equal(Instant.FromUtc(2024, 1, 15, 10, 0, 0), seconds);
        Assert.Equal(Expected, milliseconds);
    }

    [Fact]
    public void Zone_less_text_is_read_in_the_configured_zone()
    {
        var berlin = DateTimeZoneProviders.Tzdb["Europe/Berlin"];
        Assert.True(SourceTimestamp.TryParse("2024-01-15 11:00:00.123", berlin, out var instant, out _));
        Assert.Equal(Expected, instant);
    }

    [Theory]
    [InlineData("2026-03-29 02:30:00", "2026-03-29T01:30:00Z", LocalTimeMapping.Gap)]       // skipped: shifted forward by the hour
    [InlineData("2026-10-25 02:30:00", "2026-10-25T00:30:00Z", LocalTimeMapping.Overlap)]   // twice: the earlier (CEST) one
    [InlineData("2026-10-25T02:30:00.250", "2026-10-25T00:30:00.25Z", LocalTimeMapping.Overlap)]
    [InlineData("2026-03-29 01:30:00", "2026-03-29T00:30:00Z", LocalTimeMapping.Unique)]    // just before the gap
    [InlineData("2026-03-29 03:00:00", "2026-03-29T01:00:00Z", LocalTimeMapping.Unique)]    // the gap's end
    [InlineData("2026-07-01 12:00:00", "2026-07-01T10:00:00Z", LocalTimeMapping.Unique)]
    [InlineData("2026-03-29T02:30:00+01:00", "2026-03-29T01:30:00Z", LocalTimeMapping.Unique)] // an offset needs no rule
    public void Zone_less_times_in_a_DST_gap_or_overlap_follow_the_rule_and_say_so(string text, string expected, LocalTimeMapping mapping)
    {
        var berlin = DateTimeZoneProviders.Tzdb["Europe/Berlin"];

        Assert.True(SourceTimestamp.TryParse(text, berlin, out var instant, out var actual, out var problem), problem);

        Assert.Equal(NodaTime.Text.InstantPattern.ExtendedIso.Parse(expected).Value, instant);
        Assert.Equal(mapping, actual);
    }

    [Fact]
    public void The_fast_DST_check_agrees_with_NodaTime_every_half_hour_of_a_year_in_zones_with_odd_rules()
    {
        foreach (var id in new[] { "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Apia", "Asia/Kolkata" })
        {
            var zone = DateTimeZoneProviders.Tzdb[id];
            for (var local = new LocalDateTime(2011, 1, 1, 0, 0); local.Year < 2012; local = local.PlusMinutes(30))
            {
                var instant = LocalTimeResolver.Resolve(local, zone, out var mapping);
                var map = zone.MapLocal(local);
                Assert.Equal(local.InZoneLeniently(zone).ToInstant(), instant);
                Assert.Equal(map.Count switch { 0 => LocalTimeMapping.Gap, 1 => LocalTimeMapping.Unique, _ => LocalTimeMapping.Overlap }, mapping);
            }
        }
    }

    [Theory]
    [InlineData("2016-12-31T23:59:60Z")]
    [InlineData("2016-12-31 23:59:60")]
    [InlineData("2016-12-31T23:59:60.500Z")]
    [InlineData("2017-01-01T00:59:60+01:00")]
    public void A_leap_second_is_the_last_instant_of_the_second_before_it(string text)
    {
        Assert.True(SourceTimestamp.TryParse(text, DateTimeZone.Utc, out var instant, out var problem), problem);

        Assert.Equal(Instant.FromUtc(2017, 1, 1, 0, 0) - Duration.FromNanoseconds(1), instant);
        Assert.True(SourceTimestamp.TryParse("2016-12-31T23:59:59.999Z", DateTimeZone.Utc, out var before, out _));
        Assert.True(before < instant && instant < Instant.FromUtc(2017, 1, 1, 0, 0));
    }

    [Theory]
    [InlineData("2026-02-30 10:00:00")]
    [InlineData("2025-02-29T00:00:00Z")]
    [InlineData("2024-13-01 00:00:00")]
    [InlineData("2024-01-15 25:00:00")]
    [InlineData("2024-01-15 10:00:61")]
    [InlineData("2026-13-01")]
    [InlineData("not a date")]
    [InlineData("")]
    [InlineData("2024-01-15T10:00:00+25:00")]
    public void Impossible_or_garbage_timestamps_are_rejected_with_a_reason(string text)
    {
        Assert.False(SourceTimestamp.TryParse(text, DateTimeZone.Utc, out _, out var problem));
        Assert.False(string.IsNullOrEmpty(problem));
    }

    [Fact]
    public void Null_is_not_a_timestamp()
    {
        Assert.False(SourceTimestamp.TryParse(null, DateTimeZone.Utc, out _, out var problem));
        Assert.Contains("NULL", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Any_instant_written_in_any_supported_shape_reads_back_to_the_millisecond()
    {
        var instants = Gen.Choose(0, int.MaxValue).Select(ms => Instant.FromUtc(1990, 1, 1, 0, 0) + Duration.FromMilliseconds(ms * 400L));
        Prop.ForAll(instants.ToArbitrary(), instant =>
        {
            var utc = instant.ToDateTimeUtc();
            var texts = new[]
            {
                utc.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
                utc.ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture),
                utc.AddHours(5).ToString("yyyy-MM-dd'T'HH:mm:ss.fff", CultureInfo.InvariantCulture) + "+05:00",
                instant.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture),
            };
            return texts.All(t => SourceTimestamp.TryParse(t, DateTimeZone.Utc, out var parsed, out _) && parsed == instant);
        }).QuickCheckThrowOnFailure();
    }
}
