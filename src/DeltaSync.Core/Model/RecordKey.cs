using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace DeltaSync.Core.Model;

/// <summary>
/// The primary key of one record. Encoded as an order-preserving byte string so that ledger keys,
/// compared byte by byte, sort like the source's <c>ORDER BY pk</c> (integers numerically, text by code point).
/// </summary>
public sealed class RecordKey : IEquatable<RecordKey>, IComparable<RecordKey>
{
    private byte[]? _encoded;
    private int _hash;

    public RecordKey(object?[] values)
    {
        Values = values ?? throw new ArgumentNullException(nameof(values));
    }

    private RecordKey(object?[] values, byte[] encoded)
    {
        Values = values;
        _encoded = encoded;
    }

    /// <summary>The key column values, in key order.</summary>
    public IReadOnlyList<object?> Values { get; }

    /// <summary>The order-preserving encoding (see <see cref="KeyEncoding"/>).</summary>
    public byte[] Encoded => _encoded ??= KeyEncoding.Encode(Values);

    public static RecordKey FromEncoded(byte[] encoded) => new(KeyEncoding.Decode(encoded), encoded);

    /// <summary>
    /// This key with its values in another form that encodes to the same bytes — a connector's own types for values
    /// the ledger decoded as text or bytes (a timestamp, a uuid) — keeping the encoding instead of computing it again.
    /// </summary>
    public RecordKey WithValues(object?[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        System.Diagnostics.Debug.Assert(KeyEncoding.Encode(values).AsSpan().SequenceEqual(Encoded), "the values must encode to this key's bytes");
        return new RecordKey(values, Encoded);
    }

    /// <summary>The record id as reports show it: the key value, or the values joined by '|'.</summary>
    public override string ToString()
    {
        if (Values.Count == 1)
        {
            return Format(Values[0]);
        }

        return string.Join('|', Values.Select(Format));
    }

    private static string Format(object? value) => value switch
    {
        null => "NULL",
        byte[] b => Convert.ToHexStringLower(b),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    public bool Equals(RecordKey? other) => other is not null && Encoded.AsSpan().SequenceEqual(other.Encoded);

    public override bool Equals(object? obj) => obj is RecordKey k && Equals(k);

    public override int GetHashCode()
    {
        // Keys are hashed several times on the way through a batch (look-up set, resolver, ledger): computed once.
        if (_hash == 0)
        {
            var hash = new HashCode();
            hash.AddBytes(Encoded);
            _hash = hash.ToHashCode() | 1;
        }

        return _hash;
    }

    public int CompareTo(RecordKey? other) => other is null ? 1 : Encoded.AsSpan().SequenceCompareTo(other.Encoded);

    public static bool operator ==(RecordKey? left, RecordKey? right) => left is null ? right is null : left.Equals(right);

    public static bool operator !=(RecordKey? left, RecordKey? right) => !(left == right);

    public static bool operator <(RecordKey? left, RecordKey? right) => left is null ? right is not null : left.CompareTo(right) < 0;

    public static bool operator <=(RecordKey? left, RecordKey? right) => left is null || left.CompareTo(right) <= 0;

    public static bool operator >(RecordKey? left, RecordKey? right) => left is not null && left.CompareTo(right) > 0;

    public static bool operator >=(RecordKey? left, RecordKey? right) => left is null ? right is null : left.CompareTo(right) >= 0;
}

/// <summary>
/// Order-preserving, self-delimiting encoding of key tuples. Type tags follow SQLite's cross-type order
/// (NULL &lt; numbers &lt; text &lt; blob); integers are big-endian with the sign bit flipped; text and blobs
/// escape 0x00 as 0x00 0xFF and end with 0x00 0x00, so a prefix sorts before its extensions.
/// </summary>
public static class KeyEncoding
{
    private const byte NullTag = 0x05;
    private const byte IntegerTag = 0x15;
    private const byte RealTag = 0x16;
    private const byte TextTag = 0x20;
    private const byte BlobTag = 0x30;

    /// <summary>The length of a key of one integer (<see cref="EncodeInteger"/>).</summary>
    public const int IntegerKeyLength = 9;

    /// <summary>A key of one integer, written into <paramref name="destination"/> (<see cref="IntegerKeyLength"/> bytes): what <see cref="Encode"/> returns for it.</summary>
    public static void EncodeInteger(long value, Span<byte> destination)
    {
        destination[0] = IntegerTag;
        BinaryPrimitives.WriteUInt64BigEndian(destination[1..], (ulong)value ^ 0x8000_0000_0000_0000UL);
    }

    public static byte[] Encode(IReadOnlyList<object?> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 1 && values[0] is long single)
        {
            // The common key, one integer, without the general path's buffer.
            var bytes = new byte[IntegerKeyLength];
            EncodeInteger(single, bytes);
            return bytes;
        }

        var buffer = new List<byte>(16);
        foreach (var value in values)
        {
            EncodeOne(buffer, value);
        }

        return [.. buffer];
    }

    private static void EncodeOne(List<byte> buffer, object? value)
    {
        Span<byte> eight = stackalloc byte[8];
        switch (value)
        {
            case null:
                buffer.Add(NullTag);
                break;
            case long or int or short or sbyte or byte or ushort or uint or bool:
                buffer.Add(IntegerTag);
                var l = value is bool b ? (b ? 1L : 0L) : Convert.ToInt64(value, CultureInfo.InvariantCulture);
                BinaryPrimitives.WriteUInt64BigEndian(eight, (ulong)l ^ 0x8000_0000_0000_0000UL);
                buffer.AddRange(eight);
                break;
            case double or float:
                buffer.Add(RealTag);
                var bits = BitConverter.DoubleToInt64Bits(Convert.ToDouble(value, CultureInfo.InvariantCulture));
                var ordered = bits < 0 ? ~(ulong)bits : (ulong)bits ^ 0x8000_0000_0000_0000UL;
                BinaryPrimitives.WriteUInt64BigEndian(eight, ordered);
                buffer.AddRange(eight);
                break;
            case byte[] bytes:
                buffer.Add(BlobTag);
                AddEscaped(buffer, bytes);
                break;
            case Guid g:
                buffer.Add(BlobTag);
                AddEscaped(buffer, g.ToByteArray(bigEndian: true));
                break;
            case DateTime or DateTimeOffset or DateOnly or TimeOnly:
                // As sortable ISO text with every digit of precision: "G" text ("01/01/2024 00:00:00", "10:00") dropped
                // sub-seconds (a time key even the seconds), so distinct keys collided, and did not sort like the source.
                buffer.Add(TextTag);
                AddEscaped(buffer, Encoding.UTF8.GetBytes(SortableText(value)));
                break;
            default:
                buffer.Add(TextTag);
                var text = value is IFormattable f ? f.ToString(null, CultureInfo.InvariantCulture) : value.ToString() ?? "";
                AddEscaped(buffer, Encoding.UTF8.GetBytes(text));
                break;
        }
    }

    /// <summary>A date/time key value as fixed-width ISO-8601 text, which sorts as the value does (years 1–9999).</summary>
    private static string SortableText(object value) => value switch
    {
        DateTime d => d.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", CultureInfo.InvariantCulture),
        DateTimeOffset o => o.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", CultureInfo.InvariantCulture),
        DateOnly d => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        TimeOnly t => t.ToString("HH:mm:ss.fffffff", CultureInfo.InvariantCulture),
        _ => throw new ArgumentException("not a date or time", nameof(value)),
    };

    private static void AddEscaped(List<byte> buffer, byte[] bytes)
    {
        foreach (var x in bytes)
        {
            buffer.Add(x);
            if (x == 0)
            {
                buffer.Add(0xFF);
            }
        }

        buffer.Add(0);
        buffer.Add(0);
    }

    public static object?[] Decode(byte[] encoded)
    {
        ArgumentNullException.ThrowIfNull(encoded);
        var values = new List<object?>();
        var i = 0;
        while (i < encoded.Length)
        {
            var tag = encoded[i++];
            switch (tag)
            {
                case NullTag:
                    values.Add(null);
                    break;
                case IntegerTag:
                    values.Add((long)(BinaryPrimitives.ReadUInt64BigEndian(encoded.AsSpan(i, 8)) ^ 0x8000_0000_0000_0000UL));
                    i += 8;
                    break;
                case RealTag:
                    var ordered = BinaryPrimitives.ReadUInt64BigEndian(encoded.AsSpan(i, 8));
                    var bits = (ordered & 0x8000_0000_0000_0000UL) != 0 ? ordered ^ 0x8000_0000_0000_0000UL : ~ordered;
                    values.Add(BitConverter.Int64BitsToDouble((long)bits));
                    i += 8;
                    break;
                case TextTag:
                    values.Add(Encoding.UTF8.GetString(ReadEscaped(encoded, ref i)));
                    break;
                case BlobTag:
                    values.Add(ReadEscaped(encoded, ref i));
                    break;
                default:
                    throw new FormatException($"invalid key encoding: unknown tag 0x{tag:x2} at offset {i - 1}");
            }
        }

        return [.. values];
    }

    private static byte[] ReadEscaped(byte[] encoded, ref int i)
    {
        var bytes = new List<byte>();
        while (true)
        {
            var x = encoded[i++];
            if (x == 0)
            {
                var next = encoded[i++];
                if (next == 0)
                {
                    return [.. bytes];
                }

                bytes.Add(0);
                continue;
            }

            bytes.Add(x);
        }
    }
}
