using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using NodaTime;

namespace DeltaSync.Core.Model;

/// <summary>The class of an error, which decides between retrying, dead-lettering and stopping.</summary>
public enum ErrorClass
{
    /// <summary>Worth retrying: network, timeout, lock, serialization failure.</summary>
    Transient,
    /// <summary>This record or request will never succeed as it is: bad data, constraint violation.</summary>
    Permanent,
    /// <summary>Nothing will succeed until a person acts: authentication, missing table, bad configuration.</summary>
    Fatal,
}

/// <summary>A record that could not be synced, kept with the reason so it can be fixed and replayed.</summary>
public sealed record DeadLetter(
    string Stream,
    string Table,
    string RecordId,
    string RawRecord,
    string Reason,
    ErrorClass ErrorClass,
    Position Position,
    Instant FailedAt,
    int Attempts = 1)
{
    /// <summary>
    /// What makes two dead letters the same entry: one hash over stream, record id and raw record (each
    /// length-prefixed, so no two different triples collide by concatenation). Every store keys entries by it.
    /// </summary>
    public byte[] DedupeKey()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> length = stackalloc byte[4];
        foreach (var part in (ReadOnlySpan<string>)[Stream, RecordId, RawRecord])
        {
            var bytes = Encoding.UTF8.GetBytes(part);
            BinaryPrimitives.WriteInt32BigEndian(length, bytes.Length);
            hash.AppendData(length);
            hash.AppendData(bytes);
        }

        return hash.GetHashAndReset();
    }

    /// <summary>The entry's id for <c>deltasync dlq show|replay|purge</c>: stable, derived from <see cref="DedupeKey"/>.</summary>
    public string Id => "dl_" + Convert.ToHexStringLower(DedupeKey())[..16];
}
