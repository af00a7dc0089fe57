using DeltaSync.Postgres.Capture;
using FsCheck;
using FsCheck.Fluent;

namespace DeltaSync.Postgres.Tests.Connector;

/// <summary>The commit-aware sequence cursor's rules, as pure logic.</summary>
public sealed class SequenceCursorTests
{
    [Fact]
    public void A_pass_becomes_the_cursor_only_once_everything_invisible_started_after_it()
    {
        var cursor = SequenceCursor.Start.Record(micros: 1_000, max: 50);

        Assert.Equal(long.MinValue, cursor.Advance(boundMicros: 1_000).Value);
        Assert.Equal(50, cursor.Advance(boundMicros: 1_001).Value);
        Assert.Empty(cursor.Advance(boundMicros: 1_001).Passes);
    }

    [Fact]
    public void Round_trips_through_its_position()
    {
        var cursor = SequenceCursor.Start.Record(10, 5).Record(20, 9).Advance(15);

        Assert.True(SequenceCursor.TryParse(cursor.ToPosition(), out var parsed));
        Assert.Equal(cursor.Value, parsed.Value);
        Assert.Equal(cursor.Passes, parsed.Passes);
    }

    [Fact]
    public void A_malformed_position_is_refused()
    {
        Assert.False(SequenceCursor.TryParse(new Core.Model.Position(SequenceCursor.Kind, "12"), out _));
        Assert.False(SequenceCursor.TryParse(new Core.Model.Position(SequenceCursor.Kind, "12#x:1"), out _));
        Assert.False(SequenceCursor.TryParse(new Core.Model.Position("sequence", "12#"), out _));
    }

    /// <summary>
    /// Whatever passes are recorded and however many are merged away, the cursor never exceeds the highest value seen
    /// by a pass that preceded the bound (it may only be more cautious), and never moves backwards.
    /// </summary>
    [Fact]
    public void The_cursor_is_never_ahead_of_what_the_bound_allows_and_never_moves_back()
    {
        var passes = Gen.Choose(1, 40).SelectMany(n => Gen.ListOf(Gen.Choose(0, 1000), n).Select(l => l.ToArray()));
        Prop.ForAll(passes.ToArbitrary(), maxima =>
        {
            var cursor = SequenceCursor.Start;
            var recorded = new List<(long Micros, long Max)>();
            var previous = long.MinValue;
            for (var i = 0; i < maxima.Length; i++)
            {
                var micros = (i + 1) * 10L;
                cursor = cursor.Record(micros, maxima[i]);
                recorded.Add((micros, maxima[i]));
                var bound = micros - 25;
                cursor = cursor.Advance(bound);
                var allowed = recorded.Where(p => p.Micros < bound).Select(p => p.Max).DefaultIfEmpty(long.MinValue).Max();
                if (cursor.Value > allowed || cursor.Value < previous || cursor.Passes.Count > 16)
                {
                    return false;
                }

                previous = cursor.Value;
            }

            return true;
        }).QuickCheckThrowOnFailure();
    }
}
