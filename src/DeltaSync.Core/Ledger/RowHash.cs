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
            switch (value)
            {
                case null:
                    scratch[0] = 0;
                    hash.Append(scratch[..1]);
                    break;
                case long l:
                    scratch[0] = 1;
                    BinaryPrimitives.WriteInt64LittleEndian(scratch[1..], l);
                    hash.Append(scratch);
                    break;
                case double d:
                    scratch[0] = 2;
                    BinaryPrimitives.WriteDoubleLittleEndian(scratch[1..], d);
                    hash.Append(scratch);
                    break;
                case string s:
                    scratch[0] = 3;
                    BinaryPrimitives.WriteInt64LittleEndian(scratch[1..], s.Length);
                    hash.Append(scratch);
                    hash.Append(MemoryMarshal.AsBytes(s.AsSpan()));
                    break;
                case byte[] b:
                    scratch[0] = 4;
                    BinaryPrimitives.WriteInt64LittleEndian(scratch[1..], b.Length);
                    hash.Append(scratch);
                    hash.Append(b);
                    break;
                default:
                    scratch[0] = 5;
                    hash.Append(scratch[..1]);
                    hash.Append(Encoding.UTF8.GetBytes(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? ""));
                    break;
            }
        }

        return (long)hash.GetCurrentHashAsUInt64();
    }
}
