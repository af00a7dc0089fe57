using DeltaSync.Core.Time;
using FsCheck;
using FsCheck.Fluent;
using NodaTime;

namespace DeltaSync.Core.Tests.Time;

public sealed class DurationParserTests
{
    [Theory]
    [InlineData("5 minutes", 5 * 60_000L)]
    [InlineData("1 minute", 60_000L)]
    [InlineData("1 hour", 3_600_000L)]
    [InlineData("2 hours", 7_200_000L)]
    [InlineData("30s", 30_000L)]
    [InlineData("30 sec", 30_000L)]
    [InlineData("500ms", 500L)]
    [InlineData("1h30m", 90 * 60_000L)]
    [InlineData("1 day", 86_400_000L)]
    [InlineData("7 days", 7 * 86_400_000L)]
    [InlineData("90", 90_000L)]
    [InlineData("PT5M", 5 * 60_000L)]
    [InlineData("pt1h30m", 90 * 60_000L)]
    [InlineData("P1D", 86_400_000L)]
    [InlineData("PT0.5S", 500L)]
    [InlineData("  10   Minutes  ", 10 * 60_000L)]
    [InlineData("1 HOUR", 3_600_000L)]
    [InlineData("1h 30m 15s", 5_415_000L)]
    [InlineData("1 hour and 30 minutes", 90 * 60_000L)]
    [InlineData("1 hour, 30 minutes", 90 * 60_000L)]
    [InlineData("1.5 hours", 90 * 60_000L)]
    [InlineData("2 weeks", 14 * 86_400_000L)]
    [InlineData("0", 0L)]
    [InlineData("0s", 0L)]
    public void Accepts_human_and_iso_durations(string text, long milliseconds)
    {
        Assert.True(DurationParser.TryParse(text, out var value));

        Assert.Equal(Duration.FromMilliseconds(milliseconds), value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("soon")]
    [InlineData("-5 minutes")]
    [InlineData("5 fortnights")]
    [InlineData("minutes")]
    [InlineData("1h 30")]
    [InlineData("1.h")]
    [InlineData("P1M")]
    [InlineData("P1Y")]
    [InlineData("PT")]
    [InlineData("PT-5M")]
    [InlineData("and 5 minutes")]
    [InlineData("99999999999999999999 days")]
    [InlineData("9999999999 weeks")]
    public void Rejects_what_is_not_a_fixed_duration(string text)
    {
        Assert.False(DurationParser.TryParse(text, out var value));
        Assert.Equal(Duration.Zero, value);
    }

    [Fact]
    public void Whole_seconds_minutes_and_hours_round_trip_through_their_unit_names()
    {
        Prop.ForAll(
                Gen.Choose(0, 100_000).ToArbitrary(),
                Gen.Elements(("seconds", 1L), ("min", 60L), ("h", 3600L), ("days", 86_400L)).ToArbitrary(),
                (amount, unit) =>
                    DurationParser.TryParse($"{amount} {unit.Item1}", out var value)
                    && value == Duration.FromSeconds(amount * unit.Item2))
            .QuickCheckThrowOnFailure();
    }
}
