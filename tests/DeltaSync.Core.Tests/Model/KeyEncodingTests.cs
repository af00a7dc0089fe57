using System.Text;
using DeltaSync.Core.Model;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace DeltaSync.Core.Tests.Model;

/// <summary>
/// The ledger compares keys by their encoded bytes, and the diff merges the ledger with the source's
/// <c>ORDER BY pk</c>: both only work if decoding inverts encoding and byte order is tuple order.
/// </summary>
public sealed class KeyEncodingTests
{
    [Property(Arbitrary = new[] { typeof(KeyTuples) }, MaxTest = 500)]
    public void Decoding_an_encoded_tuple_gives_the_tuple_back(KeyTuple tuple)
    {
        var decoded = KeyEncoding.Decode(KeyEncoding.Encode(tuple.Values));

        Assert.Equal(tuple.Values.Length, decoded.Length);
        for (var i = 0; i < decoded.Length; i++)
        {
            Assert.True(KeyTuple.CompareValues(tuple.Values[i], decoded[i]) == 0 && SameType(tuple.Values[i], decoded[i]), $"element {i}: {KeyTuple.Format(tuple.Values[i])} came back as {KeyTuple.Format(decoded[i])}");
        }
    }

    [Property(Arbitrary = new[] { typeof(KeyTuples) }, MaxTest = 1000)]
    public void Byte_order_of_encodings_is_tuple_order(KeyTuple left, KeyTuple right)
    {
        var expected = Math.Sign(KeyTuple.Compare(left.Values, right.Values));
        var actual = Math.Sign(KeyEncoding.Encode(left.Values).AsSpan().SequenceCompareTo(KeyEncoding.Encode(right.Values)));

        Assert.True(expected == actual, $"{left} vs {right}: tuple order {expected}, byte order {actual}");
    }

    [Property(Arbitrary = new[] { typeof(KeyTuples) }, MaxTest = 300)]
    public void Sorting_by_record_key_sorts_like_the_tuples(KeyTuple[] tuples)
    {
        var byKey = tuples.OrderBy(t => new RecordKey(t.Values)).Select(t => t.Values).ToList();
        var byTuple = tuples.OrderBy(t => t.Values, Comparer<object?[]>.Create(KeyTuple.Compare)).Select(t => t.Values).ToList();

        for (var i = 0; i < byKey.Count; i++)
        {
            Assert.Equal(0, KeyTuple.Compare(byKey[i], byTuple[i]));
        }
    }

    [Property(Arbitrary = new[] { typeof(KeyTuples) }, MaxTest = 500)]
    public void A_tuple_sorts_before_every_tuple_it_is_a_prefix_of(KeyTuple prefix, KeyTuple tail)
    {
        var longer = prefix.Values.Concat(tail.Values).ToArray();
        var order = KeyEncoding.Encode(prefix.Values).AsSpan().SequenceCompareTo(KeyEncoding.Encode(longer));

        Assert.True(tail.Values.Length == 0 ? order == 0 : order < 0, $"{prefix} vs {new KeyTuple(longer)}");
    }

    [Fact]
    public void Integers_sort_numerically_across_the_sign_boundary()
    {
        long[] ascending = [long.MinValue, -256, -1, 0, 1, 255, 256, long.MaxValue];

        var sorted = ascending.Reverse().OrderBy(v => new RecordKey([v])).ToArray();

        Assert.Equal(ascending, sorted);
    }

    [Fact]
    public void Text_sorts_by_UTF8_bytes_not_by_UTF16_code_units()
    {
        // U+FFFF is one UTF-16 unit above the surrogate pair of U+1F600, but below it in UTF-8 (EF.. < F0..), as SQLite's BINARY collation sorts.
        var bmp = new RecordKey(["\uffff"]);
        var astral = new RecordKey(["\U0001F600"]);

        Assert.True(bmp < astral);
    }

    [Fact]
    public void Types_sort_null_then_numbers_then_text_then_blobs()
    {
        var keys = new[] { new RecordKey([new byte[] { 0 }]), new RecordKey([""]), new RecordKey([long.MaxValue]), new RecordKey([null]) };

        var sorted = keys.Order().ToArray();

        Assert.Equal([keys[3], keys[2], keys[1], keys[0]], sorted);
    }

    [Fact]
    public void Date_time_and_uuid_keys_decode_to_text_and_bytes_and_take_their_typed_values_back_with_the_same_encoding()
    {
        var at = new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddTicks(2_500_000);
        var id = Guid.Parse("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
        var original = new RecordKey([at, new DateOnly(2024, 2, 29), new TimeOnly(10, 0, 30), id]);

        var decoded = RecordKey.FromEncoded(original.Encoded);
        Assert.Equal(["2024-01-01T00:00:00.2500000", "2024-02-29", "10:00:30.0000000"], decoded.Values.Take(3));
        Assert.Equal(id.ToByteArray(bigEndian: true), decoded.Values[3]);

        var typed = decoded.WithValues([at, new DateOnly(2024, 2, 29), new TimeOnly(10, 0, 30), id]);
        Assert.Same(decoded.Encoded, typed.Encoded);
        Assert.Equal(original, typed);
        Assert.Equal(at, typed.Values[0]);
    }

    private static bool SameType(object? expected, object? actual) => expected?.GetType() == actual?.GetType();
}

/// <summary>A key tuple of longs, strings, byte arrays and nulls, with the order the ledger must reproduce.</summary>
public sealed record KeyTuple(object?[] Values)
{
    public override string ToString() => "(" + string.Join(", ", Values.Select(Format)) + ")";

    public static string Format(object? value) => value switch
    {
        null => "null",
        long l => l.ToString(System.Globalization.CultureInfo.InvariantCulture),
        string s => "\"" + string.Concat(s.Select(c => c is >= ' ' and <= '~' ? c.ToString() : $"\\u{(int)c:x4}")) + "\"",
        byte[] b => "x'" + Convert.ToHexStringLower(b) + "'",
        _ => value.ToString() ?? "",
    };

    /// <summary>Tuple order: element by element (NULL &lt; integer &lt; text &lt; blob, as SQLite), a prefix first.</summary>
    public static int Compare(object?[]? left, object?[]? right)
    {
        ArgumentNullException.ThrowIfNull(left);
        ArgumentNullException.ThrowIfNull(right);
        for (var i = 0; i < Math.Min(left.Length, right.Length); i++)
        {
            var order = CompareValues(left[i], right[i]);
            if (order != 0)
            {
                return order;
            }
        }

        return left.Length.CompareTo(right.Length);
    }

    public static int CompareValues(object? left, object? right)
    {
        var rank = Rank(left).CompareTo(Rank(right));
        if (rank != 0)
        {
            return rank;
        }

        return (left, right) switch
        {
            (long l, long r) => l.CompareTo(r),
            (string l, string r) => Encoding.UTF8.GetBytes(l).AsSpan().SequenceCompareTo(Encoding.UTF8.GetBytes(r)),
            (byte[] l, byte[] r) => l.AsSpan().SequenceCompareTo(r),
            _ => 0,
        };
    }

    private static int Rank(object? value) => value switch
    {
        null => 0,
        long => 1,
        string => 2,
        _ => 3,
    };
}

/// <summary>
/// Generators with small domains (so equal elements and shared prefixes are common) plus the edge cases that break
/// naive encodings: the sign bit, 0x00 and 0xFF inside text and blobs, and text whose UTF-8 and UTF-16 orders differ.
/// </summary>
public static class KeyTuples
{
    private static readonly string[] TextUnits = ["a", "b", "\0", "\u00e9", "\u00ff", "\u20ac", "\uffff", "\U0001F600"];
    private static readonly byte[] BlobBytes = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF];

    public static Arbitrary<KeyTuple> Tuples() =>
        Gen.Choose(1, 3).SelectMany(n => Gen.ArrayOf(Element(), n)).Select(values => new KeyTuple(values)).ToArbitrary();

    private static Gen<object?> Element() => Gen.Frequency(
        (1, Gen.Constant<object?>(null)),
        (4, Int64().Select(l => (object?)l)),
        (4, Text().Select(s => (object?)s)),
        (3, Blob().Select(b => (object?)b)));

    private static Gen<long> Int64() => Gen.OneOf(
        Gen.Elements(long.MinValue, long.MinValue + 1, -65536L, -256L, -1L, 0L, 1L, 255L, 256L, 65536L, long.MaxValue - 1, long.MaxValue),
        Gen.Choose(-3, 3).Select(i => (long)i),
        Gen.Four(Gen.Choose(0, 0xFFFF)).Select(p => (long)(((ulong)(uint)p.Item1 << 48) | ((ulong)(uint)p.Item2 << 32) | ((ulong)(uint)p.Item3 << 16) | (uint)p.Item4)));

    private static Gen<string> Text() =>
        Gen.Choose(0, 4).SelectMany(n => Gen.ArrayOf(Gen.Elements(TextUnits), n)).Select(string.Concat);

    private static Gen<byte[]> Blob() =>
        Gen.Choose(0, 4).SelectMany(n => Gen.ArrayOf(Gen.Elements(BlobBytes), n));
}
