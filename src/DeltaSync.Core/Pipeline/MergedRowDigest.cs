using System.Buffers;
using System.IO.Hashing;
using System.Text;
using DeltaSync.Core.Conflicts;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;

namespace DeltaSync.Core.Pipeline;

/// <summary>
/// Digests of destination rows and values of a table several sources write, in one canonical form per value, so that
/// a value as the merge writes it and the same value as the destination stores it digest alike: a value is taken as a
/// record base holds it (<see cref="RecordBaseCodec.Normalize"/>), booleans and integral reals count as integers, text
/// as its UTF-8 bytes. A row's digest covers every column of the table's schema in order; any write to the row by
/// someone else (another source, an edit out-of-band) almost surely changes it. Destinations that compute it in place
/// (SQLite's <c>deltasync_merged_digest</c>) follow the same rules.
/// </summary>
public static class MergedRowDigest
{
    /// <summary>The type tags of the canonical form.</summary>
    public const byte NullTag = 0, IntegerTag = 1, RealTag = 2, TextTag = 3, BlobTag = 4, ListTag = 5;

    [ThreadStatic]
    private static XxHash64? t_hash;

    /// <summary>The digest of a row as read from the destination (column name → value).</summary>
    public static long Of(TableSchema schema, IReadOnlyDictionary<string, object?> row)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(row);
        var hash = Fresh();
        foreach (var column in schema.Columns)
        {
            Append(hash, row.TryGetValue(column.Name, out var value) ? value : null);
        }

        return (long)hash.GetCurrentHashAsUInt64();
    }

    /// <summary>The digest of a row about to be written (values in the schema's column order).</summary>
    public static long Of(object?[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var hash = Fresh();
        foreach (var value in values)
        {
            Append(hash, value);
        }

        return (long)hash.GetCurrentHashAsUInt64();
    }

    /// <summary>Whether a real stands for an integer in the canonical form (integral, exact in a double, not −0).</summary>
    public static bool IsIntegral(double value) =>
        Math.Abs(value) <= 9007199254740992d && Math.Floor(value) == value && !(value == 0 && double.IsNegative(value));

    private static XxHash64 Fresh()
    {
        var hash = t_hash ??= new XxHash64();
        hash.Reset();
        return hash;
    }

    private static void Append(XxHash64 hash, object? value)
    {
        switch (RecordBaseCodec.Normalize(value))
        {
            case null:
                hash.Append([NullTag]);
                break;
            case long l:
                RowHash.AppendTagged(hash, IntegerTag, l);
                break;
            case bool b:
                RowHash.AppendTagged(hash, IntegerTag, b ? 1 : 0);
                break;
            case double d when IsIntegral(d):
                RowHash.AppendTagged(hash, IntegerTag, (long)d);
                break;
            case double d:
                RowHash.AppendTagged(hash, RealTag, BitConverter.DoubleToInt64Bits(d));
                break;
            case string s:
                AppendText(hash, s);
                break;
            case byte[] bytes:
                RowHash.AppendTagged(hash, BlobTag, bytes.Length);
                hash.Append(bytes);
                break;
            case List<object?> list:
                RowHash.AppendTagged(hash, ListTag, list.Count);
                foreach (var item in list)
                {
                    Append(hash, item);
                }

                break;
            case var other:
                AppendText(hash, other.ToString() ?? string.Empty);
                break;
        }
    }

    private static void AppendText(XxHash64 hash, string text)
    {
        var length = Encoding.UTF8.GetByteCount(text);
        RowHash.AppendTagged(hash, TextTag, length);
        if (length <= 512)
        {
            Span<byte> utf8 = stackalloc byte[length];
            Encoding.UTF8.GetBytes(text, utf8);
            hash.Append(utf8);
            return;
        }

        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var written = Encoding.UTF8.GetBytes(text, rented);
            hash.Append(rented.AsSpan(0, written));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }
}
