using DeltaSync.Core.Model;

namespace DeltaSync.Core.Capture;

/// <summary>
/// The position of an initial snapshot in progress: the last key copied (in key order) and the position the
/// capture continues from once the snapshot is done. A snapshot interrupted by a crash resumes after the last key;
/// changes made meanwhile are picked up from the continuation position and the ledger drops what is already applied.
/// </summary>
public static class SnapshotPosition
{
    public const string Kind = "snapshot";

    public static Position Create(RecordKey? lastKey, Position then) =>
        new(Kind, (lastKey is null ? "" : Convert.ToHexStringLower(lastKey.Encoded)) + ";" + then);

    public static bool TryParse(Position position, out RecordKey? lastKey, out Position then)
    {
        lastKey = null;
        then = Position.None;
        if (position.Kind != Kind)
        {
            return false;
        }

        var semicolon = position.Value.IndexOf(';', StringComparison.Ordinal);
        if (semicolon < 0)
        {
            return false;
        }

        var hex = position.Value[..semicolon];
        lastKey = hex.Length == 0 ? null : RecordKey.FromEncoded(Convert.FromHexString(hex));
        then = Position.Parse(position.Value[(semicolon + 1)..]);
        return true;
    }
}
