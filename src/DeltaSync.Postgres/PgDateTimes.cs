using System.Globalization;

namespace DeltaSync.Postgres;

/// <summary>
/// <c>date</c>, <c>timestamp</c> and <c>timestamptz</c> values read and written in their wire form (days, or
/// microseconds, since 2000-01-01), so that PostgreSQL's <c>infinity</c> and <c>-infinity</c> stay apart from the
/// finite extremes .NET can hold. Npgsql's own conversion reads <c>infinity</c> as <see cref="DateOnly.MaxValue"/> (or
/// <see cref="DateTime.MaxValue"/>) and writes that value back as <c>infinity</c>, so a <c>date '9999-12-31'</c> —
/// a common "no end" sentinel — arrived as <c>infinity</c>, and <c>0001-01-01</c> as <c>-infinity</c>. The
/// infinities travel through the engine as PostgreSQL's own text (<see cref="Infinity"/>, <see cref="NegativeInfinity"/>);
/// a SQLite destination stores that text, and a PostgreSQL destination writes them back as infinities. Likewise
/// <c>time '24:00:00'</c>, beyond <see cref="TimeOnly"/>, travels as its text (<see cref="EndOfDay"/>).
/// </summary>
/// <remarks>
/// Cursors keep Npgsql's reading (<see cref="CursorBound"/>): an infinite <c>updated_at</c> orders after every finite
/// one, as before. Arrays of these types still go through Npgsql's conversion.
/// </remarks>
internal static class PgDateTimes
{
    public const string Infinity = "infinity";
    public const string NegativeInfinity = "-infinity";

    private static readonly int EpochDayNumber = new DateOnly(2000, 1, 1).DayNumber;
    private static readonly long EpochTicks = new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Unspecified).Ticks;

    /// <summary>Whether the value is one of the infinities' texts (<c>infinity</c>, <c>+infinity</c>, <c>-infinity</c>, any case).</summary>
    public static bool IsInfinity(object? value, out bool positive)
    {
        positive = false;
        if (value is not string text)
        {
            return false;
        }

        var trimmed = text.AsSpan().Trim();
        if (trimmed.Equals(Infinity, StringComparison.OrdinalIgnoreCase) || trimmed.Equals("+infinity", StringComparison.OrdinalIgnoreCase))
        {
            positive = true;
            return true;
        }

        return trimmed.Equals(NegativeInfinity, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>A <c>date</c> from its wire value: a <see cref="DateOnly"/>, or an infinity's text.</summary>
    /// <exception cref="InvalidCastException">A date outside the years 1–9999.</exception>
    public static object ReadDate(int days) => days switch
    {
        int.MaxValue => Infinity,
        int.MinValue => NegativeInfinity,
        _ => (long)EpochDayNumber + days is var number && number >= DateOnly.MinValue.DayNumber && number <= DateOnly.MaxValue.DayNumber
            ? DateOnly.FromDayNumber((int)number)
            : throw new InvalidCastException(string.Create(CultureInfo.InvariantCulture, $"the date {days} days from 2000-01-01 is outside the years 1-9999 that .NET can hold")),
    };

    /// <summary>A <c>timestamp</c> (<paramref name="kind"/> Unspecified) or <c>timestamptz</c> (Utc) from its wire value.</summary>
    /// <exception cref="InvalidCastException">A timestamp outside the years 1–9999.</exception>
    public static object ReadTimestamp(long micros, DateTimeKind kind)
    {
        switch (micros)
        {
            case long.MaxValue:
                return Infinity;
            case long.MinValue:
                return NegativeInfinity;
        }

        var ticks = (Int128)micros * 10 + EpochTicks;
        return ticks >= DateTime.MinValue.Ticks && ticks <= DateTime.MaxValue.Ticks
            ? new DateTime((long)ticks, kind)
            : throw new InvalidCastException(string.Create(CultureInfo.InvariantCulture, $"the timestamp {micros} µs from 2000-01-01 is outside the years 1-9999 that .NET can hold"));
    }

    /// <summary>PostgreSQL's <c>time '24:00:00'</c> (the end of a day), which <see cref="TimeOnly"/> cannot hold: kept as this text.</summary>
    public const string EndOfDay = "24:00:00";

    /// <summary>A <c>time</c>: a <see cref="TimeOnly"/>, or <see cref="EndOfDay"/>'s text for 24:00:00.</summary>
    public static object ReadTime(TimeSpan value) =>
        value < TimeSpan.FromDays(1) ? TimeOnly.FromTimeSpan(value) : EndOfDay;

    /// <summary>Whether the value is the end of a day (<c>24:00</c>, <c>24:00:00</c>, <c>24:00:00.000000</c>) as text.</summary>
    public static bool IsEndOfDay(object? value) =>
        value is string text && text.Trim() is var t && t.StartsWith("24:00", StringComparison.Ordinal) && t.AsSpan(5).TrimStart(":.0").IsEmpty;

    /// <summary>The wire value of a date: days since 2000-01-01.</summary>
    public static int Days(DateOnly date) => date.DayNumber - EpochDayNumber;

    /// <summary>The wire value of a timestamp: microseconds since 2000-01-01 (the 100 ns remainder dropped, as PostgreSQL does).</summary>
    public static long Micros(DateTime value) => (value.Ticks - EpochTicks) / 10;

    /// <summary>
    /// The value a cursor reads for a column value: an infinity as the CLR extreme of the column's type (ordering after,
    /// or before, every finite value), anything else unchanged.
    /// </summary>
    public static object? CursorBound(object? value, string baseType) =>
        IsInfinity(value, out var positive)
            ? baseType == "date"
                ? positive ? DateOnly.MaxValue : DateOnly.MinValue
                : DateTime.SpecifyKind(positive ? DateTime.MaxValue : DateTime.MinValue, baseType == "timestamptz" ? DateTimeKind.Utc : DateTimeKind.Unspecified)
            : value;

    /// <summary>
    /// A <c>time[]</c> from its binary form (<c>array_send</c>), of any number of dimensions: arrays of arrays as
    /// <see cref="PostgresValues.Read"/> gives other arrays, each element as <see cref="ReadTime"/> reads a scalar
    /// (24:00:00 as <see cref="EndOfDay"/>'s text), null for NULL.
    /// </summary>
    public static object?[] ReadTimeArray(ReadOnlySpan<byte> binary)
    {
        var dimensions = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(binary);
        var lengths = new int[dimensions];
        for (var d = 0; d < dimensions; d++)
        {
            lengths[d] = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(binary[(12 + (8 * d))..]);
        }

        var at = 12 + (8 * dimensions);
        return dimensions == 0 ? [] : Level(binary, lengths, 0, ref at);
    }

    private static object?[] Level(ReadOnlySpan<byte> binary, int[] lengths, int dimension, ref int at)
    {
        var items = new object?[lengths[dimension]];
        for (var i = 0; i < items.Length; i++)
        {
            if (dimension < lengths.Length - 1)
            {
                items[i] = Level(binary, lengths, dimension + 1, ref at);
                continue;
            }

            var length = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(binary[at..]);
            at += 4;
            if (length < 0)
            {
                continue;
            }

            items[i] = ReadTime(TimeSpan.FromTicks(System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(binary[at..]) * 10));
            at += length;
        }

        return items;
    }
}
