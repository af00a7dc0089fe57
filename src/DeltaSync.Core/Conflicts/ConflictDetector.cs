namespace DeltaSync.Core.Conflicts;

/// <summary>
/// Finds what one version changes and where it conflicts, three-way and field by field against the base (what the
/// ledger says was applied):
/// <list type="bullet">
/// <item>a field equal to the destination's value is no change (a counter compares with the source's previous value);</item>
/// <item>a change on top of common ground, of the same source's own earlier write, or made by the destination itself
/// (it holds everything merged so far) is a plain write: rapid successive updates of one source never conflict;</item>
/// <item>a change on top of another source's write is an update conflict on that field (an insert conflict when both
/// sources inserted the key); changes to different fields merge without conflict;</item>
/// <item>a delete of a record another source wrote since it was synced, or a write to a record another source deleted,
/// is a delete conflict;</item>
/// <item>a version not newer than the last one applied from its source is a replay and changes nothing.</item>
/// </list>
/// </summary>
public sealed class ConflictDetector(ConflictPolicy policy)
{
    /// <summary>Classifies <paramref name="version"/> against <paramref name="record"/>.</summary>
    public Detection Detect(RecordBase record, RecordVersion version)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(version);
        var stamp = version.Stamp;
        var source = version.Source;
        var fromDestination = source == RecordVersion.DestinationSource;
        if (record.SourceStamps.TryGetValue(source, out var last) && !stamp.IsAfterInSameSource(last))
        {
            return Detection.Stale(version);
        }

        return version.Operation == VersionOperation.Delete
            ? DetectDelete(record, version, fromDestination)
            : DetectUpsert(record, version, fromDestination);
    }

    private Detection DetectUpsert(RecordBase record, RecordVersion version, bool fromDestination)
    {
        var source = version.Source;
        List<string>? plain = null, clashes = null, held = null, convergent = null;
        // In name order (a FieldDictionary already enumerates so).
        var values = version.Values is FieldDictionary<object?> ordered ? ordered : FieldDictionary.From(version.Values);
        foreach (var (field, value) in values)
        {
            // Three-way: the source changed the field only if it differs from what the source itself said before
            // (full rows repeat untouched fields); the destination's "before" is what was merged into it.
            var previous = fromDestination ? record.Values.GetValueOrDefault(field) : record.PreviousValue(source, field);
            if (FieldValues.Same(value, previous) && (record.Values.ContainsKey(field) || record.SourceViews.ContainsKey(source)))
            {
                continue;
            }

            var counter = policy.For(field).Rule == CustomRule.SumDeltas;
            if (!counter && record.Values.TryGetValue(field, out var current) && FieldValues.Same(value, current) && !record.Holds.ContainsKey(field))
            {
                (convergent ??= []).Add(field);
                continue;
            }

            if (record.Holds.ContainsKey(field))
            {
                (held ??= []).Add(field);
            }
            else if (record.IsNew || fromDestination || !record.Writers.TryGetValue(field, out var writer) || writer.Source == source)
            {
                (plain ??= []).Add(field);
            }
            else
            {
                (clashes ??= []).Add(field);
            }
        }

        var existence = ExistenceEffect.Plain;
        ConflictType? type = clashes is not null ? ConflictType.Update : null;
        if (record.Holds.ContainsKey(RecordBase.RecordHoldField))
        {
            existence = ExistenceEffect.Held;
        }
        else if (!record.Exists && record.Existence is { } deletion && deletion.Source != source && !fromDestination)
        {
            existence = ExistenceEffect.Conflict;
            type = ConflictType.Delete;
        }
        else if (type is not null && record.InsertedBy is { } inserted && inserted.Source != source && !record.SourceStamps.ContainsKey(source))
        {
            type = ConflictType.Insert;
        }

        return new Detection(version, false, type, plain ?? [], clashes ?? [], held ?? [], existence) { ConvergentFields = convergent ?? [] };
    }

    private static Detection DetectDelete(RecordBase record, RecordVersion version, bool fromDestination)
    {
        if (record.Holds.ContainsKey(RecordBase.RecordHoldField))
        {
            return new Detection(version, false, null, [], [], [], ExistenceEffect.Held);
        }

        if (!record.Exists)
        {
            // Deleted already (or never seen: remembered as deleted, so an insert it raced with is still a conflict).
            return new Detection(version, false, null, [], [], [], record.IsNew ? ExistenceEffect.Plain : ExistenceEffect.Concur);
        }

        // Another source decided the record's existence, or wrote a field the deleting source has not seen (the deleter
        // may still own the existence: a higher-ranked or later write of its own to other fields keeps it).
        var conflict = !fromDestination && (record.Existence is { } written && written.Source != version.Source
            || record.Writers.Values.Any(w => w.Source != version.Source));
        return conflict
            ? new Detection(version, false, ConflictType.Delete, [], [], [], ExistenceEffect.Conflict)
            : new Detection(version, false, null, [], [], [], ExistenceEffect.Plain);
    }
}

/// <summary>What a version's write does to the record's existence.</summary>
public enum ExistenceEffect
{
    /// <summary>Sets it without conflict (insert, update of a live record, undelete by the deleter, delete of a record only this source wrote).</summary>
    Plain,

    /// <summary>A delete of a record already deleted: only the deciding stamp may move.</summary>
    Concur,

    /// <summary>A delete conflict.</summary>
    Conflict,

    /// <summary>The record's existence waits for review; the write joins the review's candidates.</summary>
    Held,
}

/// <summary>
/// What <see cref="ConflictDetector"/> found in one version.
/// </summary>
/// <param name="Version">The version.</param>
/// <param name="IsStale">A replay (or older) version of its source: it changes nothing.</param>
/// <param name="Type">The conflict type, or null when the version conflicts with nothing.</param>
/// <param name="PlainFields">Fields written without conflict.</param>
/// <param name="ConflictingFields">Fields written on top of another source's write.</param>
/// <param name="HeldFields">Fields waiting for review that this write joins as a candidate.</param>
/// <param name="Existence">The effect on the record's existence.</param>
public sealed record Detection(
    RecordVersion Version,
    bool IsStale,
    ConflictType? Type,
    IReadOnlyList<string> PlainFields,
    IReadOnlyList<string> ConflictingFields,
    IReadOnlyList<string> HeldFields,
    ExistenceEffect Existence)
{
    /// <summary>Fields the version changed to the value the destination already holds: no conflict; the write's stamp is kept if it ranks higher.</summary>
    public IReadOnlyList<string> ConvergentFields { get; init; } = [];

    internal static Detection Stale(RecordVersion version) => new(version, true, null, [], [], [], ExistenceEffect.Concur);
}
