using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeltaSync.Core.Model;
using NodaTime;
using NodaTime.Text;

namespace DeltaSync.Core.State;

/// <summary>
/// Serializes checkpoints to JSON with a SHA-256 checksum over the canonical content, and reads them back,
/// migrating older state formats. A payload whose checksum does not match is corrupt.
/// </summary>
public static class CheckpointCodec
{
    private static readonly JsonSerializerOptions Compact = new() { WriteIndented = false };

    public static string Serialize(Checkpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        var body = ToJson(checkpoint);
        var canonical = body.ToJsonString(Compact);
        body["checksum"] = Checksum(canonical);
        return body.ToJsonString(Compact);
    }

    /// <summary>Reads a payload; returns null with a reason when it is corrupt or unreadable.</summary>
    public static Checkpoint? TryDeserialize(string payload, out string? problem)
    {
        problem = null;
        JsonObject? obj;
        try
        {
            obj = JsonNode.Parse(payload) as JsonObject;
        }
        catch (JsonException e)
        {
            problem = $"not valid JSON ({e.Message})";
            return null;
        }

        if (obj is null)
        {
            problem = "not a JSON object";
            return null;
        }

        var stated = obj["checksum"]?.GetValue<string>();
        obj.Remove("checksum");
        if (stated is null)
        {
            problem = "no checksum";
            return null;
        }

        if (!string.Equals(stated, Checksum(obj.ToJsonString(Compact)), StringComparison.Ordinal))
        {
            problem = "checksum mismatch (the checkpoint was changed or damaged after it was written)";
            return null;
        }

        try
        {
            Migrate(obj);
            return FromJson(obj);
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or KeyNotFoundException or JsonException or UnparsableValueException or NullReferenceException)
        {
            problem = $"unreadable ({e.Message})";
            return null;
        }
    }

    /// <summary>Older state formats are upgraded here, one version step at a time.</summary>
    private static void Migrate(JsonObject obj)
    {
        var version = obj["state_version"]?.GetValue<string>() ?? "0.9";
        if (version == "0.9")
        {
            // 0.9 had no method and no watermark; the method is unknown, so the position is kept as it was.
            obj["method"] ??= "unknown";
            obj["state_version"] = Checkpoint.CurrentStateVersion;
        }
    }

    private static JsonObject ToJson(Checkpoint c) => new()
    {
        ["state_version"] = c.StateVersion,
        ["stream"] = c.Stream,
        ["table"] = c.Table,
        ["version"] = c.Version,
        ["position"] = c.Position.ToString(),
        ["method"] = c.Method,
        ["high_water_mark"] = c.HighWaterMark is { } h ? InstantPattern.ExtendedIso.Format(h) : null,
        ["watermark"] = c.Watermark is { } w ? InstantPattern.ExtendedIso.Format(w) : null,
        ["schema_fingerprint"] = c.SchemaFingerprint,
        ["totals"] = new JsonObject
        {
            ["records_processed"] = c.Totals.RecordsProcessed,
            ["inserted"] = c.Totals.Inserted,
            ["updated"] = c.Totals.Updated,
            ["deleted"] = c.Totals.Deleted,
            ["dead_lettered"] = c.Totals.DeadLettered,
        },
        ["epoch"] = c.Epoch,
        ["run_id"] = c.RunId,
        ["created_at"] = InstantPattern.ExtendedIso.Format(c.CreatedAt),
        ["note"] = c.Note,
    };

    private static Checkpoint FromJson(JsonObject o)
    {
        var totals = o["totals"]?.AsObject();
        return new Checkpoint(
            o["stream"]!.GetValue<string>(),
            o["table"]!.GetValue<string>(),
            o["version"]!.GetValue<long>(),
            Position.Parse(o["position"]!.GetValue<string>()),
            o["method"]!.GetValue<string>(),
            ParseInstant(o["high_water_mark"]),
            ParseInstant(o["watermark"]),
            o["schema_fingerprint"]?.GetValue<string>() ?? "",
            totals is null
                ? CheckpointCounters.Zero
                : new CheckpointCounters(
                    totals["records_processed"]?.GetValue<long>() ?? 0,
                    totals["inserted"]?.GetValue<long>() ?? 0,
                    totals["updated"]?.GetValue<long>() ?? 0,
                    totals["deleted"]?.GetValue<long>() ?? 0,
                    totals["dead_lettered"]?.GetValue<long>() ?? 0),
            o["epoch"]?.GetValue<long>() ?? 0,
            o["run_id"]?.GetValue<string>() ?? "",
            ParseInstant(o["created_at"]) ?? Instant.MinValue,
            o["note"]?.GetValue<string>())
        {
            StateVersion = o["state_version"]!.GetValue<string>(),
        };
    }

    private static Instant? ParseInstant(JsonNode? node) =>
        node is null ? null : InstantPattern.ExtendedIso.Parse(node.GetValue<string>()).GetValueOrThrow();

    private static string Checksum(string canonical) =>
        "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
}
