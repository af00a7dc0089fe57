using System.Globalization;
using NodaTime;
using NodaTime.Text;

namespace DeltaSync.Core.Time;

/// <summary>
/// Parses the timestamps sources store: ISO-8601 text with or without offset, <c>YYYY-MM-DD HH:MM:SS[.fff…]</c>,
/// and epoch numbers (seconds, or milliseconds when the magnitude says so). Zone-less values are read in the
/// configured source time zone by <see cref="LocalTimeResolver"/>'s rule (a DST gap shifts forward by its length, an
/// overlap takes the earlier offset); a leap second <c>:60</c> is the last instant of the second before it.
/// </summary>
public static class SourceTimestamp
{
    /// <summary>Epoch values at or above this are milliseconds (1e11 s would be the year 5138).</summary>
    public const long EpochMillisecondsThreshold = 100_000_000_000;

    private static readonly OffsetDateTimePattern[] OffsetPatterns =
    [
        OffsetDateTimePattern.CreateWithInvariantCulture("uuuu'-'MM'-'dd'T'HH':'mm':'ss;FFFFFFFFFo<G>"),
        OffsetDateTimePattern.CreateWithInvariantCulture("uuuu'-'MM'-'dd' 'HH':'mm':'ss;FFFFFFFFFo<G>"),
        OffsetDateTimePattern.CreateWithInvariantCulture("uuuu'-'MM'-'dd'T'HH':'mmo<G>"),
        OffsetDateTimePattern.CreateWithInvariantCulture("uuuu'-'MM'-'dd' 'HH':'mmo<G>"),
    ];

    private static readonly LocalDateTimePattern[] LocalPatterns =
    [
        LocalDateTimePattern.CreateWithInvariantCulture("uuuu'-'MM'-'dd'T'HH':'mm':'ss;FFFFFFFFF"),
        LocalDateTimePattern.CreateWithInvariantCulture("uuuu'-'MM'-'dd' 'HH':'mm':'ss;FFFFFFFFF"),
        LocalDateTimePattern.CreateWithInvariantCulture("uuuu'-'MM'-'dd'T'HH':'mm"),
        LocalDateTimePattern.CreateWithInvariantCulture("uuuu'-'MM'-'dd' 'HH':'mm"),
        LocalDateTimePattern.CreateWithInvariantCulture("uuuu'-'MM'-'dd"),
    ];

    /// <summary>Parses <paramref name="value"/>; false with a reason when it is not a valid timestamp.</summary>
    public static bool TryParse(object? value, DateTimeZone zone, out Instant instant, out string? problem) =>
        TryParse(value, zone, out instant, out _, out problem);

    /// <summary>
    /// Parses <paramref name="value"/>; false with a reason when it is not a valid timestamp. <paramref name="mapping"/>
    /// says whether a zone-less value fell in a DST gap or overlap of <paramref name="zone"/> and was resolved by the rule.
    /// </summary>
    public static bool TryParse(object? value, DateTimeZone zone, out Instant instant, out LocalTimeMapping mapping, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(zone);
        instant = default;
        mapping = LocalTimeMapping.Unique;
        problem = null;
        switch (value)
        {
            case null:
                problem = "timestamp is NULL";
                return false;
            case long l:
                return FromEpoch(l, out instant, out problem);
            case int i:
                return FromEpoch(i, out instant, out problem);
            case double d when double.IsFinite(d):
                return FromEpoch(d, out instant, out problem);
            case DateTimeOffset dto:
                instant = Instant.FromDateTimeOffset(dto);
                return true;
            case DateTime dt:
                instant = dt.Kind == DateTimeKind.Utc
                    ? Instant.FromDateTimeUtc(dt)
                    : LocalTimeResolver.Resolve(LocalDateTime.FromDateTime(dt), zone, out mapping);
                return true;
            case string s:
                return FromText(s.Trim(), zone, out instant, out mapping, out problem);
            default:
                problem = $"unsupported timestamp value of type {value.GetType().Name}";
                return false;
        }
    }

    /// <summary>
    /// <see cref="TryParse(object?, DateTimeZone, out Instant, out LocalTimeMapping, out string?)"/> of text held as
    /// characters: the common ISO-8601 shapes are read straight from the span; anything else as that method reads a string.
    /// </summary>
    public static bool TryParseText(ReadOnlySpan<char> text, DateTimeZone zone, out Instant instant, out LocalTimeMapping mapping, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(zone);
        problem = null;
        // Text that starts and ends with a non-space character is what the string path hands to IsoFast after Trim().
        if (text.Length > 0 && !char.IsWhiteSpace(text[0]) && !char.IsWhiteSpace(text[^1]) && IsoFast.TryParse(text, zone, out instant, out mapping))
        {
            return true;
        }

        return TryParse(text.ToString(), zone, out instant, out mapping, out problem);
    }

    private static bool FromEpoch(double epoch, out Instant instant, out string? problem)
    {
        problem = null;
        var milliseconds = Math.Abs(epoch) >= EpochMillisecondsThreshold ? epoch : epoch * 1000;
        if (milliseconds < -62_135_596_800_000 || milliseconds > 253_402_300_799_000)
        {
            instant = default;
            problem = $"epoch value {epoch.ToString(CultureInfo.InvariantCulture)} is outside years 1-9999";
            return false;
        }

        instant = Instant.FromUnixTimeTicks((long)Math.Round(milliseconds * NodaConstants.TicksPerMillisecond));
        return true;
    }

    private static bool FromText(string text, DateTimeZone zone, out Instant instant, out LocalTimeMapping mapping, out string? problem)
    {
        instant = default;
        mapping = LocalTimeMapping.Unique;
        problem = null;
        if (text.Length == 0)
        {
            problem = "timestamp is empty text";
            return false;
        }

        if (IsoFast.TryParse(text, zone, out instant, out mapping))
        {
            return true;
        }

        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
        {
            return FromEpoch(number, out instant, out problem);
        }

        foreach (var pattern in OffsetPatterns)
        {
            var result = pattern.Parse(text);
            if (result.Success)
            {
                instant = result.Value.ToInstant();
                return true;
            }
        }

        foreach (var pattern in LocalPatterns)
        {
            var result = pattern.Parse(text);
            if (result.Success)
            {
                instant = LocalTimeResolver.Resolve(result.Value, zone, out mapping);
                return true;
            }
        }

        problem = $"'{Truncate(text)}' is not a valid timestamp (expected ISO-8601, 'YYYY-MM-DD HH:MM:SS[.fff]' or epoch seconds/milliseconds)";
        return false;
    }

    private static string Truncate(string text) => text.Length <= 64 ? text : text[..64] + "…";
}
