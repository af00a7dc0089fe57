using System.Text.Json;
using System.Text.Json.Serialization;
using DeltaSync.Core.Reporting;

namespace DeltaSync.Core.Conflicts;

/// <summary>
/// The conflict log and resolution history of a run: append-only (entries are never changed or removed), in the order
/// things happened. Each conflict is logged with its full context when detected, then every resolution it receives
/// (the automatic one, a reviewer's later) and every write that joined its review. Safe to append from several tables.
/// </summary>
public sealed class ConflictLog
{
    private readonly Lock _gate = new();
    private readonly List<ConflictLogEntry> _entries = [];
    private readonly Dictionary<string, Conflict> _conflicts = new(StringComparer.Ordinal);

    // Each conflict's resolutions in order, so the current state of n conflicts is O(n), not a scan of the log per conflict.
    private readonly Dictionary<string, List<ConflictResolution>> _resolutions = new(StringComparer.Ordinal);

    /// <summary>Every entry, oldest first.</summary>
    public IReadOnlyList<ConflictLogEntry> Entries
    {
        get
        {
            lock (_gate)
            {
                return _entries.ToList();
            }
        }
    }

    /// <summary>Logs a detected conflict and its first resolution. A conflict already logged (the same id: detected again on a replay) is not logged twice.</summary>
    public void Append(ResolvedConflict resolved)
    {
        ArgumentNullException.ThrowIfNull(resolved);
        lock (_gate)
        {
            if (!_conflicts.TryAdd(resolved.Conflict.ConflictId, resolved.Conflict))
            {
                return;
            }

            Add(ConflictLogEntry.Kinds.Detected, resolved.Conflict.ConflictId, conflict: resolved.Conflict);
            Add(ConflictLogEntry.Kinds.Resolved, resolved.Conflict.ConflictId, resolution: resolved.Resolution);
        }
    }

    /// <summary>Logs a later resolution of a logged conflict (a review's decision).</summary>
    /// <exception cref="InvalidOperationException">The conflict was never logged.</exception>
    public void AppendResolution(ConflictResolution resolution)
    {
        ArgumentNullException.ThrowIfNull(resolution);
        lock (_gate)
        {
            if (!_conflicts.ContainsKey(resolution.ConflictId))
            {
                throw new InvalidOperationException($"conflict {resolution.ConflictId} is not in the log");
            }

            Add(ConflictLogEntry.Kinds.Resolved, resolution.ConflictId, resolution: resolution);
        }
    }

    /// <summary>Logs a write that joined a pending review.</summary>
    public void AppendHeldUpdate(HeldUpdate update)
    {
        ArgumentNullException.ThrowIfNull(update);
        lock (_gate)
        {
            Add(ConflictLogEntry.Kinds.HeldUpdate, update.ConflictId, heldUpdate: update);
        }
    }

    /// <summary>Logs everything a merge produced.</summary>
    public void Append(MergeOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        foreach (var conflict in outcome.Conflicts)
        {
            Append(conflict);
        }

        foreach (var update in outcome.HeldUpdates)
        {
            AppendHeldUpdate(update);
        }
    }

    /// <summary>Every resolution of <paramref name="conflictId"/>, oldest first.</summary>
    public IReadOnlyList<ConflictResolution> History(string conflictId)
    {
        lock (_gate)
        {
            return _resolutions.TryGetValue(conflictId, out var history) ? history.ToList() : [];
        }
    }

    /// <summary>Each conflict with its current state: the latest resolution, with fields a later review settled no longer held.</summary>
    public IReadOnlyList<ResolvedConflict> Current()
    {
        lock (_gate)
        {
            return _conflicts.Values.Select(c => new ResolvedConflict(c, CurrentResolution(c.ConflictId))).ToList();
        }
    }

    /// <summary>Conflicts with fields still waiting for review.</summary>
    public IReadOnlyList<ResolvedConflict> Pending() => Current().Where(c => c.Resolution.NeedsReview).ToList();

    /// <summary>Every conflict as the sync report's <c>conflicts</c> entries, in detection order.</summary>
    public IReadOnlyList<ConflictReport> ToReports() => Current().Select(c => ConflictRecords.ToReport(c.Conflict, c.Resolution)).ToList();

    /// <summary>Every conflict as the spec's Conflict Resolution Report, in detection order.</summary>
    public IReadOnlyList<ConflictRecord> ToRecords() => Current().Select(ConflictRecords.ToRecord).ToList();

    /// <summary>Writes the log as JSON lines (one entry each), for an append-only file or store.</summary>
    public void WriteJsonLines(TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        foreach (var entry in Entries)
        {
            writer.WriteLine(JsonSerializer.Serialize(entry.ToJsonShape(), ConflictLogEntry.LineOptions));
        }
    }

    private ConflictResolution CurrentResolution(string conflictId)
    {
        var history = _resolutions[conflictId];
        var first = history[0];
        var settled = history.Skip(1).SelectMany(r => r.Fields.Where(f => !f.Held).Select(f => f.Field)).ToHashSet(StringComparer.Ordinal);
        if (history.Count == 1 || settled.Count == 0)
        {
            return history[^1];
        }

        var latest = history[^1];
        var stillHeld = first.HeldFields.Where(f => !settled.Contains(f)).ToList();
        var fields = first.Fields.Select(f => history.Skip(1).SelectMany(r => r.Fields).LastOrDefault(l => l.Field == f.Field) ?? f).ToList();
        var values = new Dictionary<string, object?>(first.ResolvedValues, StringComparer.Ordinal);
        foreach (var later in history.Skip(1))
        {
            foreach (var (field, value) in later.ResolvedValues)
            {
                values[field] = value;
            }
        }

        return latest with
        {
            Strategy = stillHeld.Count == 0 && fields.Select(f => f.Strategy).Distinct().Count() == 1 ? fields[0].Strategy : latest.Strategy,
            ResolvedValues = values,
            HeldFields = stillHeld,
            Fields = fields,
            Confidence = fields.Count == 0 ? 1.0 : fields.Min(f => f.Confidence),
        };
    }

    private void Add(string kind, string conflictId, Conflict? conflict = null, ConflictResolution? resolution = null, HeldUpdate? heldUpdate = null)
    {
        _entries.Add(new ConflictLogEntry(_entries.Count + 1, kind, conflictId, conflict, resolution, heldUpdate));
        if (resolution is not null)
        {
            if (!_resolutions.TryGetValue(conflictId, out var history))
            {
                _resolutions[conflictId] = history = [];
            }

            history.Add(resolution);
        }
    }
}

/// <summary>One entry of the conflict log: a detection (with the conflict), a resolution, or a write joining a review.</summary>
public sealed record ConflictLogEntry(long Sequence, string Kind, string ConflictId, Conflict? Conflict, ConflictResolution? Resolution, HeldUpdate? HeldUpdate)
{
    internal static readonly JsonSerializerOptions LineOptions = new(SyncReport.JsonOptions) { WriteIndented = false };

    /// <summary>The values of <see cref="Kind"/>.</summary>
    public static class Kinds
    {
        public const string Detected = "detected";
        public const string Resolved = "resolved";
        public const string HeldUpdate = "held_update";
    }

    internal object ToJsonShape() => new LineShape(
        Sequence,
        Kind,
        ConflictId,
        Conflict is null ? null : ConflictRecords.ToRecord(Conflict, Resolution ?? Pending(Conflict)),
        Resolution is null ? null : new ConflictResolutionRecord(
            Resolution.Strategy,
            Resolution.ResolvedValues,
            Resolution.ResolvedAt is { } at ? ConflictRecords.Time(at) : null,
            Resolution.ResolvedBy,
            Resolution.Confidence,
            Resolution.HeldFields),
        HeldUpdate is null ? null : new ConflictSourceRecord(HeldUpdate.Candidate.Source, ConflictRecords.Time(HeldUpdate.Candidate.Stamp.Time), HeldUpdate.Candidate.Values),
        HeldUpdate?.Field);

    private static ConflictResolution Pending(Conflict conflict) =>
        new(conflict.ConflictId, "pending", new Dictionary<string, object?>(), false, null, null, 0, [], []);

    private sealed record LineShape(
        [property: JsonPropertyName("sequence")] long Sequence,
        [property: JsonPropertyName("kind")] string Kind,
        [property: JsonPropertyName("conflict_id")] string ConflictId,
        [property: JsonPropertyName("conflict")] ConflictRecord? Conflict,
        [property: JsonPropertyName("resolution")] ConflictResolutionRecord? Resolution,
        [property: JsonPropertyName("held_update")] ConflictSourceRecord? HeldUpdate,
        [property: JsonPropertyName("field")] string? Field);
}
