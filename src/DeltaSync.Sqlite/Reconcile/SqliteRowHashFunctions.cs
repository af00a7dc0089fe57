using System.Buffers.Binary;
using System.IO.Hashing;
using SQLitePCL;

namespace DeltaSync.Sqlite.Reconcile;

/// <summary>
/// SQL functions registered on a reconciliation connection so digests are computed inside SQLite:
/// <c>deltasync_row_hash(c1, …, cn)</c>, an XXH64 of each value's storage class and bytes (text as stored, UTF-8), and
/// the aggregate <c>deltasync_hash_sum(h)</c>, their wrapping 64-bit sum (<c>sum()</c> would raise on overflow,
/// <c>total()</c> would round). Values are read from SQLite's own buffers: no managed row is built per row.
/// </summary>
internal sealed class SqliteRowHashFunctions
{
    /// <summary>Names the hash and its encoding; both sides must report the same to be compared.</summary>
    public const string HashFunction = "sqlite-xxhash64-v1";

    private readonly XxHash64 _hash = new();
    private readonly byte[] _scratch = new byte[9];

    private SqliteRowHashFunctions()
    {
    }

    public static void Register(sqlite3 db)
    {
        var functions = new SqliteRowHashFunctions();
        Check(db, raw.sqlite3_create_function(db, "deltasync_row_hash", -1, raw.SQLITE_UTF8 | raw.SQLITE_DETERMINISTIC, functions, functions.RowHash));
        Check(db, raw.sqlite3_create_function(db, "deltasync_hash_sum", 1, raw.SQLITE_UTF8 | raw.SQLITE_DETERMINISTIC, null, Step, Final));
    }

    private void RowHash(sqlite3_context context, object user, sqlite3_value[] args)
    {
        _hash.Reset();
        var scratch = _scratch.AsSpan();
        foreach (var value in args)
        {
            var type = raw.sqlite3_value_type(value);
            scratch[0] = (byte)type;
            switch (type)
            {
                case raw.SQLITE_INTEGER:
                    BinaryPrimitives.WriteInt64LittleEndian(scratch[1..], raw.sqlite3_value_int64(value));
                    _hash.Append(scratch);
                    break;
                case raw.SQLITE_FLOAT:
                    BinaryPrimitives.WriteDoubleLittleEndian(scratch[1..], raw.sqlite3_value_double(value));
                    _hash.Append(scratch);
                    break;
                case raw.SQLITE_TEXT or raw.SQLITE_BLOB:
                    // The length first, so ("ab", "c") and ("a", "bc") hash apart.
                    var bytes = raw.sqlite3_value_blob(value);
                    BinaryPrimitives.WriteInt64LittleEndian(scratch[1..], bytes.Length);
                    _hash.Append(scratch);
                    _hash.Append(bytes);
                    break;
                default:
                    _hash.Append(scratch[..1]);
                    break;
            }
        }

        raw.sqlite3_result_int64(context, (long)_hash.GetCurrentHashAsUInt64());
    }

    private static void Step(sqlite3_context context, object user, sqlite3_value[] args)
    {
        var sum = context.state as Sum ?? new Sum();
        context.state = sum;
        sum.Value = unchecked(sum.Value + raw.sqlite3_value_int64(args[0]));
    }

    private static void Final(sqlite3_context context, object user) =>
        raw.sqlite3_result_int64(context, (context.state as Sum)?.Value ?? 0);

    private static void Check(sqlite3 db, int rc)
    {
        if (rc != raw.SQLITE_OK)
        {
            throw new Raw.SqliteRawException(rc, raw.sqlite3_errmsg(db).utf8_to_string(), null);
        }
    }

    private sealed class Sum
    {
        public long Value { get; set; }
    }
}
