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
    int Attempts = 1);
