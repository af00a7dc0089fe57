using System.Collections;
using System.Globalization;
using DeltaSync.Core.Model;

namespace DeltaSync.Core.Conflicts;

/// <summary>Comparisons and arithmetic on field values of any source type (numbers across types, text, times, lists, blobs).</summary>
internal static class FieldValues
{
    /// <summary>Whether two values are the same value (1 and 1.0 are; "1" and 1 are not).</summary>
    public static bool Same(object? a, object? b)
    {
        if (a is null || b is null)
        {
            return a is null && b is null;
        }

        if (TryDecimal(a, out var x) && TryDecimal(b, out var y))
        {
            return x == y;
        }

        if (IsNumber(a) || IsNumber(b))
        {
            return IsNumber(a) && IsNumber(b) && ToDouble(a).Equals(ToDouble(b));
        }

        if (a is byte[] ba && b is byte[] bb)
        {
            return ba.AsSpan().SequenceEqual(bb);
        }

        if (IsList(a) && IsList(b))
        {
            var left = ((IEnumerable)a).Cast<object?>().ToList();
            var right = ((IEnumerable)b).Cast<object?>().ToList();
            return left.Count == right.Count && left.Zip(right).All(p => Same(p.First, p.Second));
        }

        return a.GetType() == b.GetType() ? a.Equals(b) : string.Equals(PortableValue.ToText(a), PortableValue.ToText(b), StringComparison.Ordinal);
    }

    /// <summary>Order for max/min: numbers by value, same-typed comparables by their order, anything else by text; null first.</summary>
    public static int Compare(object? a, object? b)
    {
        if (a is null || b is null)
        {
            return a is null ? (b is null ? 0 : -1) : 1;
        }

        if (TryDecimal(a, out var x) && TryDecimal(b, out var y))
        {
            return x.CompareTo(y);
        }

        if (IsNumber(a) && IsNumber(b))
        {
            return ToDouble(a).CompareTo(ToDouble(b));
        }

        if (a.GetType() == b.GetType() && a is IComparable comparable)
        {
            return comparable.CompareTo(b);
        }

        return string.CompareOrdinal(PortableValue.ToText(a), PortableValue.ToText(b));
    }

    /// <summary><paramref name="total"/> + (<paramref name="now"/> − <paramref name="before"/>), null counting as 0; integers stay integers.</summary>
    /// <exception cref="InvalidOperationException">A value is not a number.</exception>
    public static object AddDelta(object? total, object? now, object? before)
    {
        object?[] values = [total, now, before];
        foreach (var value in values)
        {
            if (value is not null && !IsNumber(value))
            {
                throw new InvalidOperationException($"sum_deltas needs numbers, got {PortableValue.ToText(value)}");
            }
        }

        if (values.All(v => v is null or sbyte or byte or short or ushort or int or uint or long))
        {
            return checked(ToLong(total) + (ToLong(now) - ToLong(before)));
        }

        if (values.All(v => v is null || !(v is double or float)))
        {
            return ToDecimal(total) + (ToDecimal(now) - ToDecimal(before));
        }

        return ToDouble(total) + (ToDouble(now) - ToDouble(before));
    }

    /// <summary>
    /// The union of two values' items, without duplicates, in ordinal order of their text. Lists give a list; text is a
    /// comma-separated list and gives text ("b,a" ∪ "c,a" = "a,b,c").
    /// </summary>
    public static object? ConcatUnique(object? a, object? b)
    {
        var items = Items(a).Concat(Items(b))
            .GroupBy(v => PortableValue.ToText(v) ?? string.Empty, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => g.First())
            .ToList();
        var asText = a is null or string && b is null or string;
        if (asText)
        {
            return items.Count == 0 && a is null && b is null ? null : string.Join(",", items.Select(PortableValue.ToText));
        }

        return items.ToArray();
    }

    private static IEnumerable<object?> Items(object? value) => value switch
    {
        null => [],
        string text => text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries),
        byte[] => [value],
        IEnumerable list => list.Cast<object?>(),
        _ => [value],
    };

    /// <summary>
    /// A 64-bit digest of <paramref name="value"/> under the equality of <see cref="Same"/>: values that are the same
    /// digest alike (numbers by their decimal value, else as doubles; bytes and other scalars by their portable text, as
    /// <see cref="Same"/> compares them with text), so comparing digests tells a changed field from an unchanged one as
    /// comparing the values would, but for a 2^-64 chance. Lists are compared item by item with numbers by value, which
    /// no text form follows: a caller must not rely on the digest of a list (the fast merge leaves records with lists
    /// to the full merge).
    /// </summary>
    public static long Digest(object? value)
    {
        var hash = t_digest ??= new System.IO.Hashing.XxHash64();
        hash.Reset();
        AppendDigest(hash, value);
        return (long)hash.GetCurrentHashAsUInt64();
    }

    [ThreadStatic]
    private static System.IO.Hashing.XxHash64? t_digest;

    private static void AppendDigest(System.IO.Hashing.XxHash64 hash, object? value)
    {
        Span<byte> scratch = stackalloc byte[17];
        switch (value)
        {
            case null:
                hash.Append([0]);
                return;
            case var number when TryDecimal(number, out var exact):
                // By value: an integer as itself, any other decimal by its digits without trailing zeros (2.50 = 2.5).
                if (decimal.Truncate(exact) == exact && exact >= long.MinValue && exact <= long.MaxValue)
                {
                    scratch[0] = 1;
                    System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(scratch[1..], (long)exact);
                    hash.Append(scratch[..9]);
                    return;
                }

                Span<int> bits = stackalloc int[4];
                decimal.GetBits(exact / 1.0000000000000000000000000000m, bits);
                scratch[0] = 6;
                hash.Append(scratch[..1]);
                hash.Append(System.Runtime.InteropServices.MemoryMarshal.AsBytes(bits));
                return;
            case var number when IsNumber(number):
                // Compared as doubles, where every NaN equals every other.
                var real = ToDouble(number);
                scratch[0] = 2;
                System.Buffers.Binary.BinaryPrimitives.WriteDoubleLittleEndian(scratch[1..], double.IsNaN(real) ? double.NaN : real);
                hash.Append(scratch[..9]);
                return;
            case var list when IsList(list):
                var items = ((IEnumerable)list).Cast<object?>().ToList();
                scratch[0] = 4;
                System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(scratch[1..], items.Count);
                hash.Append(scratch[..9]);
                foreach (var item in items)
                {
                    AppendDigest(hash, item);
                }

                return;
            default:
                var text = value as string ?? PortableValue.ToText(value) ?? string.Empty;
                scratch[0] = 5;
                System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(scratch[1..], text.Length);
                hash.Append(scratch[..9]);
                hash.Append(System.Runtime.InteropServices.MemoryMarshal.AsBytes(text.AsSpan()));
                return;
        }
    }

    private static bool IsList(object value) => value is IEnumerable and not string and not byte[];

    private static bool IsNumber(object value) =>
        value is sbyte or byte or short or ushort or int or uint or long or ulong or float or double or decimal;

    private static bool TryDecimal(object value, out decimal result)
    {
        switch (value)
        {
            case sbyte or byte or short or ushort or int or uint or long or ulong or decimal:
                result = Convert.ToDecimal(value, CultureInfo.InvariantCulture);
                return true;
            case double d when double.IsFinite(d) && Math.Abs(d) < 7.9e27:
                result = (decimal)d;
                return true;
            case float f when float.IsFinite(f) && Math.Abs(f) < 7.9e27f:
                result = (decimal)f;
                return true;
            default:
                result = 0;
                return false;
        }
    }

    private static long ToLong(object? value) => value is null ? 0 : Convert.ToInt64(value, CultureInfo.InvariantCulture);

    private static decimal ToDecimal(object? value) => value is null ? 0 : Convert.ToDecimal(value, CultureInfo.InvariantCulture);

    private static double ToDouble(object? value) => value is null ? 0 : Convert.ToDouble(value, CultureInfo.InvariantCulture);
}
