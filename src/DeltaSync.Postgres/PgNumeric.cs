using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace DeltaSync.Postgres;

/// <summary>
/// <c>numeric</c> values <see cref="decimal"/> cannot hold — NaN, ±Infinity, more than 28 significant digits, a scale
/// above 28 — carried as their exact text. Npgsql reads and writes <c>numeric</c> only as <see cref="decimal"/> (or
/// whole <see cref="System.Numerics.BigInteger"/>s), so the log's binary form is decoded here, and a destination's
/// binary COPY gets the value in <c>numeric_send</c>'s wire format (src/backend/utils/adt/numeric.c): int16 digit
/// count, int16 weight, uint16 sign, uint16 display scale, then base-10000 digits, most significant first.
/// </summary>
internal static class PgNumeric
{
    private const ushort Positive = 0x0000;
    private const ushort Negative = 0x4000;
    private const ushort NaN = 0xC000;
    private const ushort PositiveInfinity = 0xD000;
    private const ushort NegativeInfinity = 0xF000;

    /// <summary>
    /// The engine's value for a <c>numeric</c>'s text: a <see cref="decimal"/> when it holds the value exactly, scale
    /// included (<c>1.50</c> stays <c>1.50</c>, as Npgsql reads it), else the text itself.
    /// </summary>
    public static object FromText(string text) =>
        decimal.TryParse(text, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value)
        && value.ToString(CultureInfo.InvariantCulture) == text
            ? value
            : text;

    /// <summary>
    /// The engine's value for a <c>numeric</c> in <c>numeric_send</c>'s binary form: the same as
    /// <see cref="FromText"/> of its <see cref="Decode"/>d text, without building that text when the value fits a
    /// <see cref="decimal"/> (every numeric of every row of the log comes this way).
    /// </summary>
    public static object Read(ReadOnlySpan<byte> binary)
    {
        if (binary.Length >= 8 && binary.Length == 8 + (2 * BinaryPrimitives.ReadInt16BigEndian(binary)))
        {
            var count = BinaryPrimitives.ReadInt16BigEndian(binary);
            var weight = BinaryPrimitives.ReadInt16BigEndian(binary[2..]);
            var sign = BinaryPrimitives.ReadUInt16BigEndian(binary[4..]);
            var scale = BinaryPrimitives.ReadUInt16BigEndian(binary[6..]);
            if (sign is Positive or Negative && scale <= 28 && Mantissa(binary, count, weight, scale) is { } mantissa)
            {
                return new decimal((int)(uint)mantissa, (int)(uint)(mantissa >> 32), (int)(uint)(mantissa >> 64), sign == Negative && mantissa != 0, (byte)scale);
            }
        }

        return FromText(Decode(binary));
    }

    /// <summary>
    /// The value times 10^<paramref name="scale"/> as an integer below 2^96 (a decimal's mantissa), or null when it is
    /// not one: a digit below the display scale, or too many digits.
    /// </summary>
    private static UInt128? Mantissa(ReadOnlySpan<byte> binary, int count, int weight, int scale)
    {
        UInt128 mantissa = 0;
        for (var i = 0; i < count; i++)
        {
            var digit = Digit(binary, i);
            if (digit == 0)
            {
                continue;
            }

            // This base-10000 digit's power of ten in units of 10^-scale.
            var exponent = (4 * (weight - i)) + scale;
            UInt128 part;
            if (exponent >= 0)
            {
                if (exponent > 28)
                {
                    return null;
                }

                part = (ushort)digit * Powers[exponent];
            }
            else if (exponent > -4 && digit % (int)Powers[-exponent] == 0)
            {
                part = (ushort)(digit / (int)Powers[-exponent]);
            }
            else
            {
                return null;
            }

            mantissa += part;
            if (mantissa >> 96 != 0)
            {
                return null;
            }
        }

        return mantissa;
    }

    /// <summary>10^0 … 10^28.</summary>
    private static readonly UInt128[] Powers = PowersOfTen(29);

    private static UInt128[] PowersOfTen(int count)
    {
        var powers = new UInt128[count];
        powers[0] = 1;
        for (var i = 1; i < count; i++)
        {
            powers[i] = powers[i - 1] * 10;
        }

        return powers;
    }

    /// <summary>The text <c>numeric_out</c> prints for a value in <c>numeric_send</c>'s binary form.</summary>
    public static string Decode(ReadOnlySpan<byte> binary)
    {
        if (binary.Length < 8)
        {
            throw new FormatException($"a numeric's binary form is at least 8 bytes, got {binary.Length}");
        }

        var count = BinaryPrimitives.ReadInt16BigEndian(binary);
        var weight = BinaryPrimitives.ReadInt16BigEndian(binary[2..]);
        var sign = BinaryPrimitives.ReadUInt16BigEndian(binary[4..]);
        var scale = BinaryPrimitives.ReadUInt16BigEndian(binary[6..]);
        switch (sign)
        {
            case NaN:
                return "NaN";
            case PositiveInfinity:
                return "Infinity";
            case NegativeInfinity:
                return "-Infinity";
        }

        if (binary.Length != 8 + (2 * count))
        {
            throw new FormatException($"a numeric of {count} digits is {8 + (2 * count)} bytes, got {binary.Length}");
        }

        var text = new StringBuilder();
        if (sign == Negative)
        {
            text.Append('-');
        }

        if (weight < 0)
        {
            text.Append('0');
        }
        else
        {
            text.Append(Digit(binary, 0).ToString(CultureInfo.InvariantCulture));
            for (var i = 1; i <= weight; i++)
            {
                text.Append(Digit(binary, i).ToString("D4", CultureInfo.InvariantCulture));
            }
        }

        if (scale > 0)
        {
            var fraction = new StringBuilder(scale + 4);
            for (var i = weight + 1; fraction.Length < scale; i++)
            {
                fraction.Append(Digit(binary, i).ToString("D4", CultureInfo.InvariantCulture));
            }

            text.Append('.').Append(fraction, 0, scale);
        }

        return text.ToString();
    }

    /// <summary>
    /// The <c>numeric_send</c> form of a number written as text: optional sign, digits, optional fraction, optional
    /// exponent, or NaN / Infinity; the display scale is the count of fraction digits written (less the exponent).
    /// </summary>
    public static byte[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var s = text.Trim();
        if (s.Equals("NaN", StringComparison.OrdinalIgnoreCase))
        {
            return Special(NaN);
        }

        if (s.Equals("Infinity", StringComparison.OrdinalIgnoreCase) || s.Equals("+Infinity", StringComparison.OrdinalIgnoreCase) || s.Equals("inf", StringComparison.OrdinalIgnoreCase))
        {
            return Special(PositiveInfinity);
        }

        if (s.Equals("-Infinity", StringComparison.OrdinalIgnoreCase) || s.Equals("-inf", StringComparison.OrdinalIgnoreCase))
        {
            return Special(NegativeInfinity);
        }

        var negative = s.StartsWith('-');
        var at = s.Length > 0 && s[0] is '-' or '+' ? 1 : 0;
        var whole = new StringBuilder();
        var fraction = new StringBuilder();
        var inFraction = false;
        for (; at < s.Length && s[at] is not ('e' or 'E'); at++)
        {
            var c = s[at];
            if (c == '.' && !inFraction)
            {
                inFraction = true;
            }
            else if (char.IsAsciiDigit(c))
            {
                (inFraction ? fraction : whole).Append(c);
            }
            else
            {
                throw new FormatException($"'{text}' is not a number");
            }
        }

        if (whole.Length + fraction.Length == 0)
        {
            throw new FormatException($"'{text}' is not a number");
        }

        if (at < s.Length)
        {
            // An exponent moves the point: digits cross from one side to the other.
            var exponent = int.Parse(s.AsSpan(at + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            var digits = whole.ToString() + fraction;
            var point = whole.Length + exponent;
            if (point <= 0)
            {
                whole.Clear();
                fraction.Clear().Append('0', -point).Append(digits);
            }
            else if (point >= digits.Length)
            {
                whole.Clear().Append(digits).Append('0', point - digits.Length);
                fraction.Clear();
            }
            else
            {
                whole.Clear().Append(digits, 0, point);
                fraction.Clear().Append(digits, point, digits.Length - point);
            }
        }

        var scale = fraction.Length;
        // Base-10000 groups aligned on the decimal point.
        var wholeText = whole.ToString().TrimStart('0');
        wholeText = new string('0', (4 - (wholeText.Length % 4)) % 4) + wholeText;
        var fractionText = fraction + new string('0', (4 - (fraction.Length % 4)) % 4);
        var groups = new List<short>((wholeText.Length + fractionText.Length) / 4);
        for (var i = 0; i < wholeText.Length; i += 4)
        {
            groups.Add(short.Parse(wholeText.AsSpan(i, 4), CultureInfo.InvariantCulture));
        }

        for (var i = 0; i < fractionText.Length; i += 4)
        {
            groups.Add(short.Parse(fractionText.AsSpan(i, 4), CultureInfo.InvariantCulture));
        }

        var weight = (wholeText.Length / 4) - 1;
        var first = 0;
        while (first < groups.Count && groups[first] == 0)
        {
            first++;
            weight--;
        }

        var end = groups.Count;
        while (end > first && groups[end - 1] == 0)
        {
            end--;
        }

        var count = end - first;
        if (count == 0)
        {
            weight = 0;
            negative = false;
        }

        var binary = new byte[8 + (2 * count)];
        BinaryPrimitives.WriteInt16BigEndian(binary, (short)count);
        BinaryPrimitives.WriteInt16BigEndian(binary.AsSpan(2), checked((short)weight));
        BinaryPrimitives.WriteUInt16BigEndian(binary.AsSpan(4), negative ? Negative : Positive);
        BinaryPrimitives.WriteUInt16BigEndian(binary.AsSpan(6), checked((ushort)scale));
        for (var i = 0; i < count; i++)
        {
            BinaryPrimitives.WriteInt16BigEndian(binary.AsSpan(8 + (2 * i)), groups[first + i]);
        }

        return binary;
    }

    /// <summary>Base-10000 digit <paramref name="i"/> (0 is the most significant); zero outside the stored ones.</summary>
    private static short Digit(ReadOnlySpan<byte> binary, int i) =>
        i >= 0 && 8 + (2 * i) < binary.Length ? BinaryPrimitives.ReadInt16BigEndian(binary[(8 + (2 * i))..]) : (short)0;

    private static byte[] Special(ushort sign)
    {
        var binary = new byte[8];
        BinaryPrimitives.WriteUInt16BigEndian(binary.AsSpan(4), sign);
        return binary;
    }
}
