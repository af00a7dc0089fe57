using System.IO.Hashing;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Pipeline;
using SQLitePCL;

namespace DeltaSync.Sqlite.Destination;

/// <summary>
/// <c>deltasync_merged_digest(c1, …, cn)</c>: <see cref="MergedRowDigest"/> of a row computed inside SQLite from its
/// own buffers, by the same canonical rules (integral reals as integers, text as its UTF-8 bytes), so that the fast merge
/// reads one number per record instead of its row.
/// </summary>
internal sealed class SqliteMergedDigest
{
    internal const string Function = "deltasync_merged_digest";

    private readonly XxHash64 _hash = new();

    private SqliteMergedDigest()
    {
    }

    public static void Register(sqlite3 db)
    {
        var function = new SqliteMergedDigest();
        var rc = raw.sqlite3_create_function(db, Function, -1, raw.SQLITE_UTF8 | raw.SQLITE_DETERMINISTIC, function, function.Digest);
        if (rc != raw.SQLITE_OK)
        {
            throw new Raw.SqliteRawException(rc, raw.sqlite3_errmsg(db).utf8_to_string(), null);
        }
    }

    private void Digest(sqlite3_context context, object user, sqlite3_value[] args)
    {
        _hash.Reset();
        foreach (var value in args)
        {
            switch (raw.sqlite3_value_type(value))
            {
                case raw.SQLITE_INTEGER:
                    RowHash.AppendTagged(_hash, MergedRowDigest.IntegerTag, raw.sqlite3_value_int64(value));
                    break;
                case raw.SQLITE_FLOAT:
                    var real = raw.sqlite3_value_double(value);
                    if (MergedRowDigest.IsIntegral(real))
                    {
                        RowHash.AppendTagged(_hash, MergedRowDigest.IntegerTag, (long)real);
                    }
                    else
                    {
                        RowHash.AppendTagged(_hash, MergedRowDigest.RealTag, BitConverter.DoubleToInt64Bits(real));
                    }

                    break;
                case raw.SQLITE_TEXT:
                    // The text's UTF-8 bytes, as stored (the database's encoding is UTF-8).
                    var text = raw.sqlite3_value_blob(value);
                    RowHash.AppendTagged(_hash, MergedRowDigest.TextTag, text.Length);
                    _hash.Append(text);
                    break;
                case raw.SQLITE_BLOB:
                    var blob = raw.sqlite3_value_blob(value);
                    RowHash.AppendTagged(_hash, MergedRowDigest.BlobTag, blob.Length);
                    _hash.Append(blob);
                    break;
                default:
                    _hash.Append([MergedRowDigest.NullTag]);
                    break;
            }
        }

        raw.sqlite3_result_int64(context, (long)_hash.GetCurrentHashAsUInt64());
    }
}
