using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using NodaTime;

namespace DeltaSync.Core.Conflicts;

/// <summary>
/// Merges versions of one record from several sources into its base: detects conflicts (<see cref="ConflictDetector"/>),
/// resolves them (<see cref="ConflictResolver"/>), holds what needs review, and returns the new base with every conflict
/// and its resolution. Pure: no I/O, no clock (times are passed in).
/// </summary>
/// <remarks>
/// Under last-write-wins and source priority every field settles on the write that ranks highest in one total order
/// (time, priority, name; or priority, time, name), and a source's versions apply in their own order; so the destination
/// does not depend on the order versions arrive in, nor on how they are split between runs, and replaying them
/// changes nothing (property-tested). Inside a tolerance window the order is not total (writes A–B and B–C may each be
/// closer than the window while A–C is not), which is why the window's fallback is source priority or review.
/// </remarks>
public sealed class ConflictEngine
{
    private readonly ConflictDetector _detector;
    private readonly ConflictResolver _resolver;

    public ConflictEngine(ConflictPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        Policy = policy;
        _detector = new ConflictDetector(policy);
        _resolver = new ConflictResolver(policy);
    }

    /// <summary>The policy.</summary>
    public ConflictPolicy Policy { get; }

    /// <summary>
    /// Merges <paramref name="versions"/> (of <paramref name="record"/>'s key) in a canonical order: the destination's
    /// own state first (its out-of-band edits are on top of the base), then each source's versions in their own order,
    /// interleaved by commit time (then source name). The order they are given in does not matter.
    /// </summary>
    public MergeOutcome Merge(RecordBase record, IEnumerable<RecordVersion> versions, Instant now)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(versions);
        // One version (the usual case) needs no ordering, and its step is the outcome.
        if (versions is IReadOnlyList<RecordVersion> { Count: 1 } single)
        {
            CheckKey(record, single[0], nameof(versions));
            return Apply(record, single[0], now);
        }

        var conflicts = new List<ResolvedConflict>();
        var heldUpdates = new List<HeldUpdate>();
        var destinationEdits = new List<string>();
        foreach (var version in CanonicalOrder(versions))
        {
            CheckKey(record, version, nameof(versions));
            var step = Apply(record, version, now);
            record = step.Record;
            conflicts.AddRange(step.Conflicts);
            heldUpdates.AddRange(step.HeldUpdates);
            destinationEdits.AddRange(step.DestinationEdits);
        }

        return new MergeOutcome(record, conflicts, heldUpdates, destinationEdits.Count == 0 ? [] : destinationEdits.Distinct(StringComparer.Ordinal).ToList());
    }

    private static void CheckKey(RecordBase record, RecordVersion version, string parameter)
    {
        if (!string.Equals(version.Key, record.Key, StringComparison.Ordinal))
        {
            throw new ArgumentException($"version of key '{version.Key}' given for record '{record.Key}'", parameter);
        }
    }

    /// <summary>Merges one version into <paramref name="record"/>.</summary>
    public MergeOutcome Apply(RecordBase record, RecordVersion version, Instant now)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(version);
        var detection = _detector.Detect(record, version);
        if (detection.IsStale)
        {
            return new MergeOutcome(record, [], [], []);
        }

        var merge = new RecordMerge(record, version, detection, Policy, _resolver);
        merge.WritePlain();
        var decisions = merge.Decide();
        merge.JoinHolds();
        var existence = merge.ApplyExistence();
        var next = merge.Finish();
        var heldUpdates = merge.HeldUpdates;
        IReadOnlyList<string> destinationEdits = version.Source == RecordVersion.DestinationSource ? detection.PlainFields.Distinct(StringComparer.Ordinal).ToList() : [];
        if (detection.Type is not { } type)
        {
            return new MergeOutcome(next, [], heldUpdates, destinationEdits);
        }

        var conflict = Describe(record, next, version, type, detection, decisions, existence, now, merge.ConflictId, type == ConflictType.Delete ? merge.ExistenceIncumbent : null);
        return new MergeOutcome(next, [conflict], heldUpdates, destinationEdits);
    }

    /// <summary>
    /// Settles a held field (or <see cref="RecordBase.RecordHoldField"/>) with <paramref name="chosenSource"/>'s candidate:
    /// the destination takes its value (or its delete), and the resolution is returned for the history.
    /// </summary>
    /// <exception cref="InvalidOperationException">Nothing is held under <paramref name="field"/>, or <paramref name="chosenSource"/> is not one of its candidates.</exception>
    public (RecordBase Record, ConflictResolution Resolution) ResolveReview(RecordBase record, string field, string chosenSource, string resolvedBy, Instant now)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (!record.Holds.TryGetValue(field, out var hold))
        {
            throw new InvalidOperationException($"record {record.Key}: nothing is held for review under '{field}'");
        }

        if (!hold.Candidates.TryGetValue(chosenSource, out var candidate))
        {
            throw new InvalidOperationException($"record {record.Key}, field {field}: '{chosenSource}' is not a candidate; candidates: {string.Join(", ", hold.Candidates.Keys.Order(StringComparer.Ordinal))}");
        }

        var next = record with { Holds = record.Holds.Remove(field) };
        object? value;
        if (field == RecordBase.RecordHoldField)
        {
            next = next with { Exists = !candidate.Deleted, Existence = candidate.Stamp };
            value = !candidate.Deleted;
        }
        else
        {
            value = candidate.Values.GetValueOrDefault(field);
            next = next with { Values = next.Values.SetItem(field, value), Writers = next.Writers.SetItem(field, candidate.Stamp) };
        }

        var resolved = field == RecordBase.RecordHoldField ? next.Values : FieldDictionary.Of(field, value);
        var manual = ConflictNames.Of(ConflictStrategy.ManualReview);
        var resolution = new ConflictResolution(
            hold.ConflictId,
            manual,
            resolved,
            !next.Exists,
            now,
            resolvedBy,
            1.0,
            [],
            [new FieldResolution(field, manual, chosenSource, value, 1.0, false, $"{resolvedBy} chose {chosenSource}")]);
        return (next, resolution);
    }

    /// <summary>Each source's versions in their own order (sequence, then time), interleaved by commit time, then source name; the destination first.</summary>
    internal static IEnumerable<RecordVersion> CanonicalOrder(IEnumerable<RecordVersion> versions)
    {
        var queues = versions
            .GroupBy(v => v.Source, StringComparer.Ordinal)
            .Select(g => new Queue<RecordVersion>(g.OrderBy(v => v.Sequence).ThenBy(v => v.AdjustedTime)))
            .ToList();
        while (queues.Count > 0)
        {
            var next = queues
                .OrderBy(q => q.Peek().Source == RecordVersion.DestinationSource ? 0 : 1)
                .ThenBy(q => q.Peek().AdjustedTime)
                .ThenBy(q => q.Peek().Source, StringComparer.Ordinal)
                .First();
            yield return next.Dequeue();
            if (next.Count == 0)
            {
                queues.Remove(next);
            }
        }
    }

    private static ResolvedConflict Describe(RecordBase before, RecordBase after, RecordVersion version, ConflictType type, Detection detection, IReadOnlyList<FieldDecision> decisions, FieldDecision? existence, Instant now, string conflictId, WriteStamp? existenceIncumbent)
    {
        var source = version.Source;
        var fields = type == ConflictType.Delete
            ? (version.Operation == VersionOperation.Delete
                ? before.Writers.Where(w => w.Value.Source != source).Select(w => w.Key)
                : detection.PlainFields.Concat(detection.ConflictingFields))
            : detection.ConflictingFields;
        var fieldList = fields.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

        var sides = new Dictionary<string, ConflictCandidate>(StringComparer.Ordinal);
        if (type == ConflictType.Delete)
        {
            var other = existenceIncumbent ?? before.Existence!;
            sides[other.Source] = new ConflictCandidate(other, !before.Exists, before.Exists ? Pick(before.Values, fieldList) : FieldDictionary<object?>.Empty);
        }

        foreach (var field in detection.ConflictingFields)
        {
            // What the incumbent's source said: the merged value may be a rule's combination (a sum, a union, a maximum)
            // stamped with that source's write, which the source itself never reported.
            var writer = before.Writers[field];
            var value = before.PreviousValue(writer.Source, field);
            sides[writer.Source] = sides.TryGetValue(writer.Source, out var side)
                ? side with { Values = new Dictionary<string, object?>(side.Values) { [field] = value } }
                : new ConflictCandidate(writer, false, new Dictionary<string, object?> { [field] = value });
        }

        sides[source] = new ConflictCandidate(version.Stamp, version.Operation == VersionOperation.Delete, Pick(version.Values, fieldList));
        var conflict = new Conflict(conflictId, before.Key, type, fieldList, sides.Values.OrderBy(s => s.Source, StringComparer.Ordinal).ToList(), now);

        var fieldResolutions = decisions.ToList();
        if (existence is not null)
        {
            fieldResolutions.Add(existence with { Value = existence.Held ? before.Exists : existence.Value });
        }

        var named = fieldResolutions.Select((d, i) => new FieldResolution(
            i < decisions.Count ? detection.ConflictingFields[i] : RecordBase.RecordHoldField,
            d.Strategy,
            d.Winner,
            d.Value,
            d.Confidence,
            d.Held,
            d.Reason)).ToList();
        var strategies = named.Select(f => f.Strategy).Distinct(StringComparer.Ordinal).ToList();
        var heldFields = named.Where(f => f.Held).Select(f => f.Field).ToList();
        var allHeld = named.Count > 0 && heldFields.Count == named.Count;
        var resolution = new ConflictResolution(
            conflictId,
            strategies.Count == 1 ? strategies[0] : "field_level",
            Pick(after.Values, fieldList),
            !after.Exists,
            allHeld ? null : now,
            allHeld ? null : ConflictResolution.System,
            named.Count == 0 ? 1.0 : named.Min(f => f.Confidence),
            heldFields,
            named);
        return new ResolvedConflict(conflict, resolution);
    }

    private static FieldDictionary<object?> Pick(IReadOnlyDictionary<string, object?> values, IEnumerable<string> fields) =>
        FieldDictionary.From(fields.Where(values.ContainsKey).Select(f => KeyValuePair.Create(f, values[f])));

    /// <summary>The deterministic id of a conflict: a digest of the key, the type, the fields and the writes involved.</summary>
    internal static string ConflictIdOf(string key, RecordVersion version, IEnumerable<WriteStamp> incumbents)
    {
        var text = new StringBuilder(key).Append('\n').Append(version.Source).Append('\n');
        foreach (var stamp in incumbents.Append(version.Stamp).Distinct().OrderBy(s => s.Source, StringComparer.Ordinal).ThenBy(s => s.Sequence).ThenBy(s => s.Time))
        {
            text.Append(stamp.Source).Append('@').Append(stamp.Time.ToUnixTimeTicks().ToString(CultureInfo.InvariantCulture)).Append('#').Append(stamp.Sequence.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }

        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString()));
        return "conflict_" + Convert.ToHexStringLower(digest.AsSpan(0, 8));
    }
}

/// <summary>What merging versions into a record did.</summary>
/// <param name="Record">The new base.</param>
/// <param name="Conflicts">Every conflict found, with its resolution (held fields included).</param>
/// <param name="HeldUpdates">Writes that joined a pending review instead of reaching the destination.</param>
/// <param name="DestinationEdits">Fields the destination had changed out-of-band since the base.</param>
public sealed record MergeOutcome(RecordBase Record, IReadOnlyList<ResolvedConflict> Conflicts, IReadOnlyList<HeldUpdate> HeldUpdates, IReadOnlyList<string> DestinationEdits);

/// <summary>A write to a held field (or held record) that joined the review's candidates.</summary>
public sealed record HeldUpdate(string ConflictId, string RecordId, string Field, ConflictCandidate Candidate);
