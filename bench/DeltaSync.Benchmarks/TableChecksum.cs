using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;

namespace DeltaSync.Benchmarks;

/// <summary>
/// The row count and an XxHash64 over every value of every row in key order, with each value's storage class:
/// two tables with equal checksums hold the same rows, down to the type SQLite stored each value as.
/// </summary>
public readonly record struct TableChecksum(long Rows, ulong Hash)
{
    public static TableChecksum Compute(string path)
    {
        using var connection = ItemsDatabase.Open(path);
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {ItemsDatabase.Columns} FROM {ItemsDatabase.Table} ORDER BY id";
        using var reader = command.ExecuteReader();
        var hash = new XxHash64();
        Span<byte> scalar = stackalloc byte[9];
        long rows = 0;
        while (reader.Read())
        {
            rows++;
            for (var i = 0; i < reader.FieldCount; i++)
            {
                switch (reader.GetValue(i))
                {
                    case long l:
                        scalar[0] = 1;
                        BinaryPrimitives.WriteInt64LittleEndian(scalar[1..], l);
                        hash.Append(scalar);
                        break;
                    case double d:
                        scalar[0] = 2;
                        BinaryPrimitives.WriteDoubleLittleEndian(scalar[1..], d);
                        hash.Append(scalar);
                        break;
                    case string s:
                        scalar[0] = 3;
                        BinaryPrimitives.WriteInt64LittleEndian(scalar[1..], s.Length);
                        hash.Append(scalar);
                        hash.Append(MemoryMarshal.AsBytes(s.AsSpan()));
                        break;
                    case byte[] b:
                        scalar[0] = 4;
                        BinaryPrimitives.WriteInt64LittleEndian(scalar[1..], b.Length);
                        hash.Append(scalar);
                        hash.Append(b);
                        break;
                    default:
                        scalar[0] = 0;
                        hash.Append(scalar[..1]);
                        break;
                }
            }
        }

        return new TableChecksum(rows, hash.GetCurrentHashAsUInt64());
    }

    public override string ToString() => $"{Rows:N0} rows, xxh64 {Hash:x16}";
}
