using DeltaSync.Core.Model;

namespace DeltaSync.Core.Capture;

/// <summary>
/// A keyset cursor <c>(value, key)</c>: the cursor column's normalized value (epoch milliseconds for timestamps,
/// the number for sequences) and the key of the last row at that value. Ties on the value are ordered by key, so a
/// page boundary inside a run of equal values neither skips nor repeats a row.
/// </summary>
public readonly record struct CursorPosition(string Kind, long Value, RecordKey? Key)
{
    public const string TimestampKind = "cursor";
    public const string SequenceKind = "sequence";

    public Position ToPosition() =>
        new(Kind, Value.ToString(System.Globalization.CultureInfo.InvariantCulture) + "|" + (Key is null ? "" : Convert.ToHexStringLower(Key.Encoded)));

    public static bool TryParse(Position position, out CursorPosition cursor)
    {
        cursor = default;
        if (position.Kind is not (TimestampKind or SequenceKind))
        {
            return false;
        }

        var bar = position.Value.IndexOf('|', StringComparison.Ordinal);
        if (bar < 0 || !long.TryParse(position.Value.AsSpan(0, bar), System.Globalization.CultureInfo.InvariantCulture, out var value))
        {
            return false;
        }

        var hex = position.Value[(bar + 1)..];
        cursor = new CursorPosition(position.Kind, value, hex.Length == 0 ? null : RecordKey.FromEncoded(Convert.FromHexString(hex)));
        return true;
    }

    /// <summary>
    /// Where the next pass starts: <paramref name="lookback"/> behind this cursor (inclusive, no key), or exactly after
    /// this cursor when there is no lookback.
    /// </summary>
    public CursorPosition StartWithLookback(long lookback) =>
        lookback <= 0 ? this : new CursorPosition(Kind, Value - lookback, null);

    /// <summary>The cursor to checkpoint: this one, but never beyond <paramref name="ceiling"/> (source clock minus the safety margin).</summary>
    public CursorPosition CapAt(long ceiling) => Value > ceiling ? new CursorPosition(Kind, ceiling, null) : this;
}
