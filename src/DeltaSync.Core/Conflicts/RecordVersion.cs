using NodaTime;

namespace DeltaSync.Core.Conflicts;

/// <summary>What one version of a record says about it.</summary>
public enum VersionOperation
{
    /// <summary>The record exists with these values (an insert or an update; values may be partial).</summary>
    Upsert,

    /// <summary>The record is gone.</summary>
    Delete,
}

/// <summary>
/// One source's version of one record, as the conflict engine sees it.
/// </summary>
/// <param name="Source">The source's name (<see cref="DestinationSource"/> for the destination's own state).</param>
/// <param name="Key">The record's id (as reports show it).</param>
/// <param name="Operation">Upsert or delete.</param>
/// <param name="Values">Field values by column name; only the fields the source reports (partial updates leave the others alone). Empty for deletes.</param>
/// <param name="CommitTime">When the source committed it, by the source's own clock.</param>
public sealed record RecordVersion(string Source, string Key, VersionOperation Operation, IReadOnlyDictionary<string, object?> Values, Instant CommitTime)
{
    /// <summary>The pseudo-source standing for edits made at the destination out-of-band.</summary>
    public const string DestinationSource = "destination";

    /// <summary>
    /// Where the version sits in its source's order (a sequence, an LSN as a number…). Versions of one source are
    /// applied in this order, then by commit time; a version not newer than one already applied from the same source
    /// is a replay and changes nothing.
    /// </summary>
    public long Sequence { get; init; }

    /// <summary>How far the source's clock is known to run ahead of true time (negative: behind); subtracted from <see cref="CommitTime"/> before times of different sources are compared.</summary>
    public Duration ClockOffset { get; init; }

    /// <summary>The commit time on the common clock: <see cref="CommitTime"/> − <see cref="ClockOffset"/>.</summary>
    public Instant AdjustedTime => CommitTime - ClockOffset;

    /// <summary>The stamp this version's writes carry.</summary>
    public WriteStamp Stamp => new(Source, AdjustedTime, Sequence);

    /// <summary>An upsert.</summary>
    public static RecordVersion Upsert(string source, string key, IReadOnlyDictionary<string, object?> values, Instant commitTime, long sequence = 0) =>
        new(source, key, VersionOperation.Upsert, values, commitTime) { Sequence = sequence };

    /// <summary>A delete.</summary>
    public static RecordVersion Delete(string source, string key, Instant commitTime, long sequence = 0) =>
        new(source, key, VersionOperation.Delete, new Dictionary<string, object?>(), commitTime) { Sequence = sequence };

    /// <summary>
    /// The destination's current state as a version of the pseudo-source <see cref="DestinationSource"/>: fields that
    /// differ from the base were edited out-of-band since the last sync. <paramref name="current"/> null means the row
    /// is gone. <paramref name="observedAt"/> stands for the edit's time (the destination rarely knows it better).
    /// </summary>
    public static RecordVersion FromDestination(string key, IReadOnlyDictionary<string, object?>? current, Instant observedAt) =>
        current is null
            ? Delete(DestinationSource, key, observedAt, long.MaxValue)
            : Upsert(DestinationSource, key, current, observedAt, long.MaxValue);
}

/// <summary>Who wrote a value and when: the source, its commit time on the common clock, and its place in the source's order.</summary>
public sealed record WriteStamp(string Source, Instant Time, long Sequence)
{
    /// <summary>Whether this stamp is later than <paramref name="other"/> in the order of one source (sequence, then time).</summary>
    public bool IsAfterInSameSource(WriteStamp other) =>
        Sequence != other.Sequence ? Sequence > other.Sequence : Time > other.Time;

    public override string ToString() => $"{Source}@{Time}#{Sequence}";
}
