using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Sqlite.Raw;

namespace DeltaSync.Sqlite;

/// <summary>
/// Which SQLite result codes are worth a retry, which say that a record can never be written as it is, and which need
/// a person (https://www.sqlite.org/rescode.html; the primary code is the low byte of an extended one).
/// </summary>
internal static class SqliteErrors
{
    public static SyncException Classify(SqliteRawException error, string context)
    {
        ArgumentNullException.ThrowIfNull(error);
        var errorClass = ClassOf(error.Code);
        return new SyncException(errorClass, $"{context}: {error.Message}", error);
    }

    public static ErrorClass ClassOf(int code) => (code & 0xFF) switch
    {
        // BUSY, LOCKED: another connection holds the database; IOERR, FULL, PROTOCOL: the disk or file system, which may recover.
        5 or 6 or 10 or 13 or 15 => ErrorClass.Transient,
        // TOOBIG, CONSTRAINT, MISMATCH, RANGE: this row violates the table's rules or limits.
        18 or 19 or 20 or 25 => ErrorClass.Permanent,
        // ERROR (no such table/column), READONLY, CORRUPT, CANTOPEN, AUTH, NOTADB and the rest: a person must act.
        _ => ErrorClass.Fatal,
    };
}
