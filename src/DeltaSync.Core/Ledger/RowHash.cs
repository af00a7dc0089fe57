using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;

namespace DeltaSync.Core.Ledger;

/// <summary>
/// A 64-bit hash of a row's values with their types, so the ledger can tell a re-read row that did not change
/// from a real update without keeping the row.
/// </summary>
public static class RowHash
{
    public static long Compute(object?[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var hash = new XxHash64();
        Span<byte> scratch = stackalloc byte[9];
        foreach (var value in values)
        {
            Append(hash, scratch, value);
        }

        return (long)hash.GetCurrentHashAsUInt64();
    }

    /// <summary>
    /// The pieces of <see cref="Compute"/> for a caller that holds values in another form (a SQLite function reading
    /// SQLite's own buffers): appending a row's values in order gives the same hash as <see cref="Compute"/> over the
    /// CLR values they stand for.
    /// </summary>
    public static void AppendNull(XxHash64 hash)
    {
        ArgumentNullException.ThrowIfNull(hash);
        hash.Append([0]);
    }

    /// <inheritdoc cref="AppendNull"/>
    public static void AppendInteger(XxHash64 hash, long value) => AppendTagged(hash, 1, value);

    /// <inheritdoc cref="AppendNull"/>
    public static void AppendReal(XxHash64 hash, double value) => AppendTagged(hash, 2, BitConverter.DoubleToInt64Bits(value));

    /// <inheritdoc cref="AppendNull"/>
    public static void AppendText(XxHash64 hash, ReadOnlySpan<char> value)
    {
        AppendTagged(hash, 3, value.Length);
        hash.Append(MemoryMarshal.AsBytes(value));
    }

    /// <inheritdoc cref="AppendNull"/>
    public static void AppendBlob(XxHash64 hash, ReadOnlySpan<byte> value)
    {
        AppendTagged(hash, 4, value.Length);
        hash.Append(value);
    }

    /// <summary>A type tag and eight little-endian bytes (the value, or a length that its bytes follow).</summary>
    public static void AppendTagged(XxHash64 hash, byte tag, long value)
    {
        ArgumentNullException.ThrowIfNull(hash);
        Span<byte> scratch = stackalloc byte[9];
        scratch[0] = tag;
        BinaryPrimitives.WriteInt64LittleEndian(scratch[1..], value);
        hash.Append(scratch);
    }

    /// <summary>
    /// One value with a type tag. Integers of every width hash alike (so do the two float widths): the same number read
    /// through a narrower type is the same value. Times keep every tick; arrays hash element by element.
    /// </summary>
    private static void Append(XxHash64 hash, Span<byte> scratch, object? value)
    {
        switch (value)
        {
            case null:
                AppendNull(hash);
                break;
            case long l:
                AppendInteger(hash, l);
                break;
            case int or short:
                scratch[0] = 1;
                BinaryPrimitives.WriteInt64LittleEndian(scratch[1..], Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture));
                hash.Append(scratch);
                break;
            case double d:
                AppendReal(hash, d);
                break;
            case float:
                scratch[0] = 2;
                BinaryPrimitives.WriteDoubleLittleEndian(scratch[1..], Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture));
                hash.Append(scratch);
                break;
            case bool b:
                scratch[0] = 6;
                scratch[1] = b ? (byte)1 : (byte)0;
                hash.Append(scratch[..2]);
                break;
            case DateTime t:
                scratch[0] = 7;
                BinaryPrimitives.WriteInt64LittleEndian(scratch[1..], t.Ticks);
                hash.Append(scratch);
                break;
            case DateTimeOffset o:
                scratch[0] = 7;
                BinaryPrimitives.WriteInt64LittleEndian(scratch[1..], o.UtcTicks);
                hash.Append(scratch);
                break;
            case Guid g:
                scratch[0] = 8;
                hash.Append(scratch[..1]);
                hash.Append(g.ToByteArray());
                break;
            case Array a when value is not byte[]:
                scratch[0] = 9;
                BinaryPrimitives.WriteInt64LittleEndian(scratch[1..], a.Length);
                hash.Append(scratch);
                foreach (var item in a)
                {
                    Append(hash, scratch, item);
                }

                break;
            case string s:
                AppendText(hash, s);
                break;
            case byte[] b:
                AppendBlob(hash, b);
                break;
            default:
                scratch[0] = 5;
                hash.Append(scratch[..1]);
                hash.Append(Encoding.UTF8.GetBytes(Core.Model.PortableValue.ToText(value) ?? ""));
                break;
        }
    }
}
