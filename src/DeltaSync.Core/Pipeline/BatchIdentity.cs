using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;

namespace DeltaSync.Core.Pipeline;

/// <summary>
/// The idempotency key of a batch: a hash over source, table, the batch's first and last position and what it writes
/// (each record's key, operation and row hash). Positions alone are not enough: a polling or per-row-version pass has
/// the same positions every time while its content differs. The same key later becomes the <c>Idempotency-Key</c>
/// header of HTTP destinations.
/// </summary>
public static class BatchIdentity
{
    public static string Key(string source, string table, Position first, Position last, IReadOnlyList<RowWrite> writes, IReadOnlyList<LedgerEntry> ledger)
    {
        ArgumentNullException.ThrowIfNull(writes);
        ArgumentNullException.ThrowIfNull(ledger);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        AppendText(hash, source);
        AppendText(hash, table);
        AppendText(hash, first.ToString());
        AppendText(hash, last.ToString());
        foreach (var write in writes)
        {
            AppendBytes(hash, write.Key.Encoded);
            AppendNumber(hash, (long)write.Kind);
        }

        foreach (var entry in ledger)
        {
            AppendBytes(hash, entry.Key.Encoded);
            AppendNumber(hash, entry.RowHash);
            AppendNumber(hash, entry.Deleted ? 1 : 0);
        }

        return "ib_" + Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static void AppendText(IncrementalHash hash, string value) => AppendBytes(hash, Encoding.UTF8.GetBytes(value));

    // Each part is length-prefixed, so no two different sequences of parts hash the same bytes.
    private static void AppendBytes(IncrementalHash hash, byte[] value)
    {
        AppendNumber(hash, value.Length);
        hash.AppendData(value);
    }

    private static void AppendNumber(IncrementalHash hash, long value)
    {
        Span<byte> number = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(number, value);
        hash.AppendData(number);
    }
}
