using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using DeltaSync.Core.Model;
using DeltaSync.Core.State;
using NodaTime;

namespace DeltaSync.Core.Tests.State;

public sealed class CheckpointCodecTests
{
    private static readonly Instant T0 = Instant.FromUtc(2025, 3, 14, 9, 26, 53) + Duration.FromNanoseconds(123_456_789);

    private static readonly Checkpoint Sample = new(
        "sync/orders",
        "orders",
        7,
        new Position("cursor", "2025-03-14T09:26:53.123456789Z|1042"),
        "cursor",
        T0,
        T0 - Duration.FromSeconds(30),
        "sha256:schema",
        new CheckpointCounters(1000, 900, 80, 20, 3),
        Epoch: 4,
        RunId: "run-42",
        CreatedAt: T0 + Duration.FromSeconds(1),
        Note: "rollback to version 5");

    [Fact]
    public void A_checkpoint_round_trips_through_its_payload()
    {
        var payload = CheckpointCodec.Serialize(Sample);

        var back = CheckpointCodec.TryDeserialize(payload, out var problem);

        Assert.Null(problem);
        Assert.Equal(Sample, back);
        Assert.Equal(Checkpoint.CurrentStateVersion, back!.StateVersion);
    }

    [Fact]
    public void Absent_instants_and_note_round_trip()
    {
        var bare = Sample with { HighWaterMark = null, Watermark = null, Note = null, Totals = CheckpointCounters.Zero, Position = Position.None };

        Assert.Equal(bare, CheckpointCodec.TryDeserialize(CheckpointCodec.Serialize(bare), out _));
    }

    [Fact]
    public void The_checksum_is_sha256_of_the_compact_json_without_the_checksum_key()
    {
        var body = JsonNode.Parse(CheckpointCodec.Serialize(Sample))!.AsObject();
        var stated = body["checksum"]!.GetValue<string>();
        body.Remove("checksum");

        Assert.Equal(Checksum(body.ToJsonString()), stated);
    }

    [Fact]
    public void A_one_character_change_is_detected_by_the_checksum()
    {
        var payload = CheckpointCodec.Serialize(Sample);
        var at = payload.IndexOf("|1042", StringComparison.Ordinal) + 1;
        var changed = string.Concat(payload.AsSpan(0, at), "2", payload.AsSpan(at + 1));

        var back = CheckpointCodec.TryDeserialize(changed, out var problem);

        Assert.Null(back);
        Assert.StartsWith("checksum mismatch", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void A_changed_checksum_is_detected()
    {
        var payload = CheckpointCodec.Serialize(Sample);
        var at = payload.IndexOf("\"sha256:", StringComparison.Ordinal) + "\"sha256:".Length;
        var flipped = payload[at] == 'a' ? "b" : "a";

        Assert.Null(CheckpointCodec.TryDeserialize(string.Concat(payload.AsSpan(0, at), flipped, payload.AsSpan(at + 1)), out var problem));
        Assert.StartsWith("checksum mismatch", problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "not valid JSON")]
    [InlineData("{\"stream\":\"sync/or", "not valid JSON")]
    [InlineData("[1,2]", "not a JSON object")]
    [InlineData("{\"stream\":\"sync/orders\"}", "no checksum")]
    public void Unreadable_payloads_are_reported_with_a_reason(string payload, string reason)
    {
        Assert.Null(CheckpointCodec.TryDeserialize(payload, out var problem));
        Assert.StartsWith(reason, problem, StringComparison.Ordinal);
    }

    [Fact]
    public void A_payload_with_a_valid_checksum_but_missing_fields_is_unreadable()
    {
        var body = """{"state_version":"1.0","stream":"sync/orders"}""";

        Assert.Null(CheckpointCodec.TryDeserialize(WithChecksum(body), out var problem));
        Assert.StartsWith("unreadable", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void A_state_version_0_9_payload_is_migrated_to_the_current_format()
    {
        // As 0.9 wrote it: no "method", no "watermark".
        const string V09 = """{"state_version":"0.9","stream":"sync/orders","table":"orders","version":7,"position":"cursor:2023-11-02T08:15:00Z|881","high_water_mark":"2023-11-02T08:15:00Z","schema_fingerprint":"fp-09","totals":{"records_processed":120,"inserted":100,"updated":15,"deleted":5,"dead_lettered":2},"epoch":3,"run_id":"run-0.9","created_at":"2023-11-02T08:16:00Z","note":null}""";
        Assert.Equal(V09, JsonNode.Parse(V09)!.ToJsonString()); // the fixture is already in canonical form

        var migrated = CheckpointCodec.TryDeserialize(WithChecksum(V09), out var problem);

        Assert.Null(problem);
        Assert.NotNull(migrated);
        Assert.Equal("1.0", migrated.StateVersion);
        Assert.Equal("unknown", migrated.Method);
        Assert.Equal(new Position("cursor", "2023-11-02T08:15:00Z|881"), migrated.Position);
        Assert.Equal(7, migrated.Version);
        Assert.Equal("sync/orders", migrated.Stream);
        Assert.Equal(Instant.FromUtc(2023, 11, 2, 8, 15), migrated.HighWaterMark);
        Assert.Null(migrated.Watermark);
        Assert.Equal(new CheckpointCounters(120, 100, 15, 5, 2), migrated.Totals);
        Assert.Equal(3, migrated.Epoch);
    }

    [Fact]
    public void A_payload_without_a_state_version_is_read_as_0_9()
    {
        const string Unversioned = """{"stream":"sync/orders","table":"orders","version":1,"position":"none:","schema_fingerprint":"","epoch":0,"run_id":"r","created_at":"2023-11-02T08:16:00Z"}""";

        var migrated = CheckpointCodec.TryDeserialize(WithChecksum(Unversioned), out var problem);

        Assert.Null(problem);
        Assert.Equal("1.0", migrated!.StateVersion);
        Assert.Equal("unknown", migrated.Method);
        Assert.True(migrated.Position.IsNone);
    }

    [Fact]
    public void A_migrated_payload_serializes_in_the_current_format()
    {
        const string V09 = """{"state_version":"0.9","stream":"s/t","table":"t","version":2,"position":"cursor:5","schema_fingerprint":"","epoch":0,"run_id":"r","created_at":"2023-11-02T08:16:00Z"}""";
        var migrated = CheckpointCodec.TryDeserialize(WithChecksum(V09), out _)!;

        var rewritten = JsonNode.Parse(CheckpointCodec.Serialize(migrated))!.AsObject();

        Assert.Equal("1.0", rewritten["state_version"]!.GetValue<string>());
        Assert.Equal("unknown", rewritten["method"]!.GetValue<string>());
        Assert.Equal(migrated, CheckpointCodec.TryDeserialize(rewritten.ToJsonString(), out _));
    }

    /// <summary>Appends a checksum computed independently of the codec, as an older DeltaSync would have.</summary>
    private static string WithChecksum(string canonicalBody) =>
        string.Concat(canonicalBody.AsSpan(0, canonicalBody.Length - 1), ",\"checksum\":\"", Checksum(canonicalBody), "\"}");

    private static string Checksum(string canonical) =>
        "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
}
