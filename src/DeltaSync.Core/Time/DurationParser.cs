using System.Globalization;
using System.Numerics;
using NodaTime;
using NodaTime.Text;

namespace DeltaSync.Core.Time;

/// <summary>
/// Reads the human durations used in configuration files: <c>"5 minutes"</c>, <c>"30s"</c>, <c>"500ms"</c>,
/// <c>"1h30m"</c>, <c>"7 days"</c>, a bare number of seconds (<c>"90"</c>) or ISO-8601 (<c>"PT5M"</c>).
/// </summary>
/// <remarks>
/// Units are case-insensitive and may be separated from their number and from each other by spaces,
/// commas or "and". Months and years are rejected because they have no fixed length.
/// </remarks>
public static class DurationParser
{
    private const long NanosecondsPerMillisecond = 1_000_000;
    private const long NanosecondsPerSecond = 1_000 * NanosecondsPerMillisecond;
    private const long NanosecondsPerMinute = 60 * NanosecondsPerSecond;
    private const long NanosecondsPerHour = 60 * NanosecondsPerMinute;
    private const long NanosecondsPerDay = 24 * NanosecondsPerHour;

    // Well inside Duration's range (about 16.7 million days), and keeps decimal arithmetic far from overflow.
    private static readonly decimal MaxNanoseconds = 1_000_000m * NanosecondsPerDay;

    // A number has at most this many digits before the point; together with MaxNanoseconds no product can overflow.
    private const int MaxIntegerDigits = 12;

    private static readonly Dictionary<string, long> Units = new(StringComparer.OrdinalIgnoreCase)
    {
        ["ms"] = NanosecondsPerMillisecond,
        ["msec"] = NanosecondsPerMillisecond,
        ["msecs"] = NanosecondsPerMillisecond,
        ["millisecond"] = NanosecondsPerMillisecond,
        ["milliseconds"] = NanosecondsPerMillisecond,
        ["s"] = NanosecondsPerSecond,
        ["sec"] = NanosecondsPerSecond,
        ["secs"] = NanosecondsPerSecond,
        ["second"] = NanosecondsPerSecond,
        ["seconds"] = NanosecondsPerSecond,
        ["m"] = NanosecondsPerMinute,
        ["min"] = NanosecondsPerMinute,
        ["mins"] = NanosecondsPerMinute,
        ["minute"] = NanosecondsPerMinute,
        ["minutes"] = NanosecondsPerMinute,
        ["h"] = NanosecondsPerHour,
        ["hr"] = NanosecondsPerHour,
        ["hrs"] = NanosecondsPerHour,
        ["hour"] = NanosecondsPerHour,
        ["hours"] = NanosecondsPerHour,
        ["d"] = NanosecondsPerDay,
        ["day"] = NanosecondsPerDay,
        ["days"] = NanosecondsPerDay,
        ["w"] = 7 * NanosecondsPerDay,
        ["week"] = 7 * NanosecondsPerDay,
        ["weeks"] = 7 * NanosecondsPerDay,
    };

    /// <summary>Parses <paramref name="text"/>; false (and <see cref="Duration.Zero"/>) when it is not a duration.</summary>
    public static bool TryParse(string text, out Duration value)
    {
        value = Duration.Zero;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var trimmed = text.Trim();
        if (trimmed[0] is 'P' or 'p')
        {
            return TryParseIso(trimmed, out value);
        }

        if (TryReadNumber(trimmed, 0, out var bareSeconds, out var end) && end == trimmed.Length)
        {
            return TryCreate(bareSeconds * NanosecondsPerSecond, out value);
        }

        return TryParseUnits(trimmed, out value);
    }

    private static bool TryParseIso(string text, out Duration value)
    {
        value = Duration.Zero;
        var result = PeriodPattern.NormalizingIso.Parse(text.ToUpperInvariant());
        if (!result.Success)
        {
            return false;
        }

        var period = result.Value;
        if (period.Years != 0 || period.Months != 0)
        {
            return false;
        }

        var duration = period.ToDuration();
        if (duration < Duration.Zero)
        {
            return false;
        }

        value = duration;
        return true;
    }

    private static bool TryParseUnits(string text, out Duration value)
    {
        value = Duration.Zero;
        decimal total = 0;
        var index = 0;
        var terms = 0;
        while (true)
        {
            index = SkipSeparators(text, index, allowWords: terms > 0);
            if (index == text.Length)
            {
                break;
            }

            if (!TryReadNumber(text, index, out var number, out index))
            {
                return false;
            }

            index = SkipWhitespace(text, index);
            var unitStart = index;
            while (index < text.Length && char.IsAsciiLetter(text[index]))
            {
                index++;
            }

            if (!Units.TryGetValue(text[unitStart..index], out var nanosecondsPerUnit))
            {
                return false;
            }

            total += number * nanosecondsPerUnit;
            if (total > MaxNanoseconds)
            {
                return false;
            }

            terms++;
        }

        return terms > 0 && TryCreate(total, out value);
    }

    private static bool TryReadNumber(string text, int start, out decimal number, out int end)
    {
        number = 0;
        end = start;
        while (end < text.Length && char.IsAsciiDigit(text[end]))
        {
            end++;
        }

        var integerDigits = end - start;
        if (integerDigits == 0 || integerDigits > MaxIntegerDigits)
        {
            return false;
        }

        if (end < text.Length && text[end] == '.')
        {
            var fractionStart = end + 1;
            var fractionEnd = fractionStart;
            while (fractionEnd < text.Length && char.IsAsciiDigit(text[fractionEnd]))
            {
                fractionEnd++;
            }

            if (fractionEnd == fractionStart)
            {
                return false;
            }

            // Digits past nanosecond precision of a week add nothing but risk of decimal overflow.
            end = Math.Min(fractionEnd, fractionStart + 15);
            var parsed = decimal.TryParse(text.AsSpan(start, end - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out number);
            end = fractionEnd;
            return parsed;
        }

        return decimal.TryParse(text.AsSpan(start, integerDigits), NumberStyles.None, CultureInfo.InvariantCulture, out number);
    }

    private static int SkipWhitespace(string text, int index)
    {
        while (index < text.Length && char.IsWhiteSpace(text[index]))
        {
            index++;
        }

        return index;
    }

    private static int SkipSeparators(string text, int index, bool allowWords)
    {
        while (true)
        {
            index = SkipWhitespace(text, index);
            if (!allowWords || index == text.Length)
            {
                return index;
            }

            if (text[index] == ',')
            {
                index++;
            }
            else if (string.Compare(text, index, "and", 0, 3, StringComparison.OrdinalIgnoreCase) == 0
                     && index + 3 < text.Length && !char.IsAsciiLetter(text[index + 3]))
            {
                index += 3;
            }
            else
            {
                return index;
            }
        }
    }

    private static bool TryCreate(decimal nanoseconds, out Duration value)
    {
        value = Duration.Zero;
        if (nanoseconds > MaxNanoseconds)
        {
            return false;
        }

        value = Duration.FromNanoseconds(new BigInteger(decimal.Round(nanoseconds, MidpointRounding.AwayFromZero)));
        return true;
    }
}
