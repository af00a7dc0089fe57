using NodaTime;

namespace DeltaSync.Core.Time;

/// <summary>
/// An allocation-free reader for the common shapes <c>YYYY-MM-DD[T| ]HH:MM[:SS[.f…]][Z|±HH[:]MM]</c>, used on the hot
/// path before the general NodaTime patterns. It rejects impossible dates (Feb 30) and anything it does not fully
/// understand, leaving those to the slower, complete parser. A leap second (<c>:60</c>, any fraction) is read as the
/// last instant of the second before it (<c>:59.999999999</c>): later than every other time of that minute and no later
/// than the next minute's start, so ordering stays monotonic and SQLite's cursor expression can do the same.
/// </summary>
internal static class IsoFast
{
    public static bool TryParse(ReadOnlySpan<char> s, DateTimeZone zone, out Instant instant, out LocalTimeMapping mapping)
    {
        instant = default;
        mapping = LocalTimeMapping.Unique;
        if (s.Length < 16 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':')
        {
            return false;
        }

        if (!Digits(s, 0, 4, out var year) || !Digits(s, 5, 2, out var month) || !Digits(s, 8, 2, out var day)
            || !Digits(s, 11, 2, out var hour) || !Digits(s, 14, 2, out var minute))
        {
            return false;
        }

        var i = 16;
        var second = 0;
        long ticks = 0;
        if (i < s.Length && s[i] == ':')
        {
            if (!Digits(s, i + 1, 2, out second))
            {
                return false;
            }

            i += 3;
            if (i < s.Length && s[i] == '.')
            {
                i++;
                var start = i;
                long scale = 1_000_000;
                while (i < s.Length && char.IsAsciiDigit(s[i]))
                {
                    if (i - start < 7)
                    {
                        ticks += (s[i] - '0') * scale;
                        scale /= 10;
                    }

                    i++;
                }

                if (i == start)
                {
                    return false;
                }
            }
        }

        if (year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour > 23 || minute > 59 || second > 60)
        {
            return false;
        }

        var local = second == 60
            ? new LocalDateTime(year, month, day, hour, minute, 59).PlusNanoseconds(999_999_999)
            : new LocalDateTime(year, month, day, hour, minute, second).PlusTicks(ticks);
        if (i == s.Length)
        {
            instant = LocalTimeResolver.Resolve(local, zone, out mapping);
            return true;
        }

        if (s[i] == 'Z' && i + 1 == s.Length)
        {
            instant = local.InUtc().ToInstant();
            return true;
        }

        if (s[i] is not ('+' or '-'))
        {
            return false;
        }

        var sign = s[i] == '-' ? -1 : 1;
        if (!TryOffset(s[(i + 1)..], out var offsetHours, out var offsetMinutes))
        {
            return false;
        }

        if (offsetHours > 18 || offsetMinutes > 59)
        {
            return false;
        }

        var offset = Offset.FromSeconds(sign * ((offsetHours * 3600) + (offsetMinutes * 60)));
        instant = local.WithOffset(offset).ToInstant();
        return true;
    }

    /// <summary>An offset after its sign: <c>HH:MM</c>, <c>HHMM</c> or <c>HH</c>.</summary>
    private static bool TryOffset(ReadOnlySpan<char> rest, out int hours, out int minutes)
    {
        hours = 0;
        minutes = 0;
        return rest.Length switch
        {
            5 => rest[2] == ':' && Digits(rest, 0, 2, out hours) && Digits(rest, 3, 2, out minutes),
            4 => Digits(rest, 0, 2, out hours) && Digits(rest, 2, 2, out minutes),
            2 => Digits(rest, 0, 2, out hours),
            _ => false,
        };
    }

    private static bool Digits(ReadOnlySpan<char> s, int start, int count, out int value)
    {
        value = 0;
        if (start + count > s.Length)
        {
            return false;
        }

        for (var i = start; i < start + count; i++)
        {
            if (!char.IsAsciiDigit(s[i]))
            {
                return false;
            }

            value = (value * 10) + (s[i] - '0');
        }

        return true;
    }
}
