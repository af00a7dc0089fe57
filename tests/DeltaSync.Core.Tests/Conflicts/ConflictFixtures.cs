using DeltaSync.Core.Config;
using DeltaSync.Core.Conflicts;
using NodaTime;

namespace DeltaSync.Core.Tests.Conflicts;

/// <summary>Two sources (<c>crm</c> ranked before <c>shop</c>) and a customer record synced at 09:00.</summary>
internal static class ConflictFixtures
{
    public const string Key = "CUST123";

    public static readonly Instant Nine = Instant.FromUtc(2024, 1, 15, 9, 0);

    public static readonly Instant Now = Instant.FromUtc(2024, 1, 15, 10, 15);

    public static Instant At(int minutes, int seconds = 0) => Nine + Duration.FromMinutes(minutes) + Duration.FromSeconds(seconds);

    public static Dictionary<string, object?> Row(params (string Field, object? Value)[] values) =>
        values.ToDictionary(v => v.Field, v => v.Value, StringComparer.Ordinal);

    public static RecordBase Synced() =>
        RecordBase.Synced(Key, Row(("email", "old@example.com"), ("phone", "555-0000"), ("stock", 10L), ("tags", "vip")), "crm", "shop");

    public static RecordVersion Upsert(string source, int minute, long sequence, params (string Field, object? Value)[] values) =>
        RecordVersion.Upsert(source, Key, Row(values), At(minute), sequence);

    public static RecordVersion Delete(string source, int minute, long sequence) => RecordVersion.Delete(source, Key, At(minute), sequence);

    public static ConflictResolutionOptions Options(string strategy) => strategy switch
    {
        "last_write_wins" => ConflictResolutionOptions.Default,
        "source_wins" => ConflictResolutionOptions.Default with { DefaultStrategy = "source_wins" },
        "manual_review" => ConflictResolutionOptions.Default with { DefaultStrategy = "manual_review" },
        "custom" => ConflictResolutionOptions.Default with
        {
            Strategies =
            [
                Field("email", "max"),
                Field("phone", "prefer_non_null"),
                Field("stock", "sum_deltas"),
                Field("tags", "concat_unique"),
            ],
        },
        _ => throw new ArgumentOutOfRangeException(nameof(strategy)),
    } with { SourcePriority = ["crm", "shop"] };

    /// <summary>What the destination holds: existence and every value, as comparable text.</summary>
    public static string Destination(RecordBase record) =>
        (record.Exists ? "exists " : "deleted ") + string.Join(", ", record.Values.OrderBy(v => v.Key, StringComparer.Ordinal).Select(v => $"{v.Key}={v.Value}"));

    public static FieldStrategyOptions Field(string field, string rule) => new(field, "custom", []) { Rule = rule };

    public static ConflictEngine Engine(string strategy) => new(ConflictPolicy.From(Options(strategy)));

    public static ConflictEngine Engine(ConflictResolutionOptions options, IConflictResolver? plugin = null) => new(ConflictPolicy.From(options, plugin));
}
