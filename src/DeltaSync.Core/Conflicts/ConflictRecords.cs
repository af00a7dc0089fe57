using System.Collections;
using System.Text.Json;
using System.Text.Json.Serialization;
using DeltaSync.Core.Model;
using DeltaSync.Core.Reporting;
using NodaTime;
using NodaTime.Text;

namespace DeltaSync.Core.Conflicts;

/// <summary>
/// The spec's "Conflict Resolution Report" for one conflict, plus what review needs: <c>status</c>
/// (<c>resolved</c> or <c>pending_review</c>), the resolution's <c>confidence</c> and <c>held_fields</c>.
/// A deleting side's <c>values</c>, and <c>resolved_values</c> of a record left deleted, are <c>{"_deleted": true}</c>.
/// </summary>
public sealed record ConflictRecord(
    [property: JsonPropertyName("conflict_id")] string ConflictId,
    [property: JsonPropertyName("record_id")] string RecordId,
    [property: JsonPropertyName("conflict_type")] string ConflictType,
    [property: JsonPropertyName("detected_at")] string DetectedAt,
    [property: JsonPropertyName("conflicting_fields")] IReadOnlyList<string> ConflictingFields,
    [property: JsonPropertyName("sources")] IReadOnlyList<ConflictSourceRecord> Sources,
    [property: JsonPropertyName("resolution")] ConflictResolutionRecord Resolution,
    [property: JsonPropertyName("status")] string Status)
{
    public string ToJson() => JsonSerializer.Serialize(this, SyncReport.JsonOptions);
}

/// <summary>One side of a conflict in the report: the source, its commit time and the values it wrote.</summary>
public sealed record ConflictSourceRecord(
    [property: JsonPropertyName("source")] string Source,
    [property: JsonPropertyName("timestamp")] string Timestamp,
    [property: JsonPropertyName("values")] IReadOnlyDictionary<string, object?> Values);

/// <summary>The report's <c>resolution</c>; <c>resolved_at</c> and <c>resolved_by</c> are null while everything waits for review.</summary>
public sealed record ConflictResolutionRecord(
    [property: JsonPropertyName("strategy")] string Strategy,
    [property: JsonPropertyName("resolved_values")] IReadOnlyDictionary<string, object?> ResolvedValues,
    [property: JsonPropertyName("resolved_at"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? ResolvedAt,
    [property: JsonPropertyName("resolved_by"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? ResolvedBy,
    [property: JsonPropertyName("confidence")] double Confidence,
    [property: JsonPropertyName("held_fields")] IReadOnlyList<string> HeldFields);

/// <summary>Conflicts as the spec's JSON: the Conflict Resolution Report, and the sync report's <c>conflicts</c> entries.</summary>
public static class ConflictRecords
{
    /// <summary>The key a deleting side's values (and a deleted outcome) carry.</summary>
    public const string DeletedMarker = "_deleted";

    /// <summary>The Conflict Resolution Report of <paramref name="conflict"/> as resolved by <paramref name="resolution"/> (its latest resolution).</summary>
    public static ConflictRecord ToRecord(Conflict conflict, ConflictResolution resolution)
    {
        ArgumentNullException.ThrowIfNull(conflict);
        ArgumentNullException.ThrowIfNull(resolution);
        return new ConflictRecord(
            conflict.ConflictId,
            conflict.RecordId,
            ConflictNames.Of(conflict.Type),
            Time(conflict.DetectedAt),
            conflict.Fields,
            conflict.Sources.Select(s => new ConflictSourceRecord(s.Source, Time(s.Stamp.Time), SideValues(s))).ToList(),
            new ConflictResolutionRecord(
                resolution.Strategy,
                ResolvedValues(resolution),
                resolution.ResolvedAt is { } at ? Time(at) : null,
                resolution.ResolvedBy,
                Math.Round(resolution.Confidence, 4),
                resolution.HeldFields),
            resolution.NeedsReview ? "pending_review" : "resolved");
    }

    /// <inheritdoc cref="ToRecord(Conflict, ConflictResolution)"/>
    public static ConflictRecord ToRecord(ResolvedConflict resolved)
    {
        ArgumentNullException.ThrowIfNull(resolved);
        return ToRecord(resolved.Conflict, resolved.Resolution);
    }

    /// <summary>The sync report's entry: <c>record_id</c>, <c>conflict_type</c>, <c>fields</c>, <c>source_values</c> (per source), <c>resolution</c> (the strategy), <c>resolved_value</c>, <c>resolved_at</c>.</summary>
    public static ConflictReport ToReport(Conflict conflict, ConflictResolution resolution)
    {
        ArgumentNullException.ThrowIfNull(conflict);
        ArgumentNullException.ThrowIfNull(resolution);
        return new ConflictReport(
            conflict.RecordId,
            ConflictNames.Of(conflict.Type),
            conflict.Fields,
            conflict.Sources.ToDictionary(s => s.Source, SideValues, StringComparer.Ordinal),
            resolution.Strategy,
            ResolvedValues(resolution),
            resolution.ResolvedAt is { } at ? Time(at) : null);
    }

    /// <summary>An instant as the reports write it (ISO-8601, UTC, fractions only when present).</summary>
    public static string Time(Instant instant) => InstantPattern.ExtendedIso.Format(instant);

    private static IReadOnlyDictionary<string, object?> SideValues(ConflictCandidate side) =>
        side.Deleted
            ? new Dictionary<string, object?>(StringComparer.Ordinal) { [DeletedMarker] = true }
            : side.Values.OrderBy(v => v.Key, StringComparer.Ordinal).ToDictionary(v => v.Key, v => Json(v.Value), StringComparer.Ordinal);

    private static IReadOnlyDictionary<string, object?> ResolvedValues(ConflictResolution resolution) =>
        resolution.Deleted
            ? new Dictionary<string, object?>(StringComparer.Ordinal) { [DeletedMarker] = true }
            : resolution.ResolvedValues.OrderBy(v => v.Key, StringComparer.Ordinal).ToDictionary(v => v.Key, v => Json(v.Value), StringComparer.Ordinal);

    /// <summary>A value System.Text.Json writes faithfully: JSON primitives as they are, lists as arrays, anything else as its portable text.</summary>
    private static object? Json(object? value) => value switch
    {
        null or string or bool => value,
        sbyte or byte or short or ushort or int or uint or long or ulong or float or double or decimal => value,
        Instant instant => Time(instant),
        byte[] => PortableValue.ToText(value),
        IEnumerable list => list.Cast<object?>().Select(Json).ToList(),
        _ => PortableValue.ToText(value),
    };
}
