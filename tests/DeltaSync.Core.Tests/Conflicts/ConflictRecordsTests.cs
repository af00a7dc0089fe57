using System.Text.Json;
using DeltaSync.Core.Conflicts;
using DeltaSync.Core.Reporting;
using static DeltaSync.Core.Tests.Conflicts.ConflictFixtures;

namespace DeltaSync.Core.Tests.Conflicts;

public sealed class ConflictRecordsTests
{
    private static MergeOutcome SpecExample() =>
        Engine("last_write_wins").Merge(
            Synced(),
            [
                RecordVersion.Upsert("system_a", Key, Row(("email", "old2@example.com"), ("phone", "555-1234")), At(0), 1),
                RecordVersion.Upsert("system_b", Key, Row(("email", "new@example.com"), ("phone", "555-5678")), At(60), 1),
            ],
            Now);

    [Fact]
    public void Conflict_resolution_report_has_the_specs_shape()
    {
        var outcome = SpecExample();

        using var json = JsonDocument.Parse(ConflictRecords.ToRecord(Assert.Single(outcome.Conflicts)).ToJson());
        var root = json.RootElement;

        Assert.Equal(
            ["conflict_id", "record_id", "conflict_type", "detected_at", "conflicting_fields", "sources", "resolution", "status"],
            root.EnumerateObject().Select(p => p.Name));
        Assert.StartsWith("conflict_", root.GetProperty("conflict_id").GetString(), StringComparison.Ordinal);
        Assert.Equal("CUST123", root.GetProperty("record_id").GetString());
        Assert.Equal("update_conflict", root.GetProperty("conflict_type").GetString());
        Assert.Equal("2024-01-15T10:15:00Z", root.GetProperty("detected_at").GetString());
        Assert.Equal(["email", "phone"], root.GetProperty("conflicting_fields").EnumerateArray().Select(e => e.GetString()));
        var sources = root.GetProperty("sources").EnumerateArray().ToList();
        Assert.Equal(["source", "timestamp", "values"], sources[0].EnumerateObject().Select(p => p.Name));
        Assert.Equal(("system_a", "2024-01-15T09:00:00Z"), (sources[0].GetProperty("source").GetString(), sources[0].GetProperty("timestamp").GetString()));
        Assert.Equal("555-5678", sources[1].GetProperty("values").GetProperty("phone").GetString());
        var resolution = root.GetProperty("resolution");
        Assert.Equal(["strategy", "resolved_values", "resolved_at", "resolved_by", "confidence", "held_fields"], resolution.EnumerateObject().Select(p => p.Name));
        Assert.Equal("last_write_wins", resolution.GetProperty("strategy").GetString());
        Assert.Equal("new@example.com", resolution.GetProperty("resolved_values").GetProperty("email").GetString());
        Assert.Equal("2024-01-15T10:15:00Z", resolution.GetProperty("resolved_at").GetString());
        Assert.Equal("system", resolution.GetProperty("resolved_by").GetString());
        Assert.Equal("resolved", root.GetProperty("status").GetString());
    }

    [Fact]
    public void Sync_report_conflict_entry_has_the_specs_fields()
    {
        var (conflict, resolution) = Assert.Single(SpecExample().Conflicts);
        var report = ConflictRecords.ToReport(conflict, resolution);

        using var json = JsonDocument.Parse(JsonSerializer.Serialize(report, SyncReport.JsonOptions));
        var root = json.RootElement;

        Assert.Equal(["record_id", "conflict_type", "fields", "source_values", "resolution", "resolved_value", "resolved_at"], root.EnumerateObject().Select(p => p.Name));
        Assert.Equal("555-1234", root.GetProperty("source_values").GetProperty("system_a").GetProperty("phone").GetString());
        Assert.Equal("new@example.com", root.GetProperty("source_values").GetProperty("system_b").GetProperty("email").GetString());
        Assert.Equal("last_write_wins", root.GetProperty("resolution").GetString());
        Assert.Equal("555-5678", root.GetProperty("resolved_value").GetProperty("phone").GetString());
        Assert.Equal("2024-01-15T10:15:00Z", root.GetProperty("resolved_at").GetString());
    }

    [Fact]
    public void A_deleting_side_and_a_deleted_outcome_are_marked()
    {
        var outcome = Engine("last_write_wins").Merge(Synced(), [Upsert("crm", 10, 1, ("phone", "555-1111")), Delete("shop", 20, 1)], Now);
        var record = ConflictRecords.ToRecord(Assert.Single(outcome.Conflicts));

        Assert.Equal("delete_conflict", record.ConflictType);
        Assert.Equal(true, record.Sources.Single(s => s.Source == "shop").Values[ConflictRecords.DeletedMarker]);
        Assert.Equal(true, record.Resolution.ResolvedValues[ConflictRecords.DeletedMarker]);
    }

    [Fact]
    public void A_conflict_waiting_for_review_has_no_resolution_time_until_reviewed_and_the_log_keeps_both()
    {
        var engine = Engine("manual_review");
        var outcome = engine.Merge(Synced(), [Upsert("crm", 10, 1, ("email", "crm@x")), Upsert("shop", 20, 1, ("email", "shop@x"))], Now);
        var log = new ConflictLog();
        log.Append(outcome);
        log.Append(outcome);

        var pending = Assert.Single(log.ToRecords());
        Assert.Equal(("pending_review", null, null), (pending.Status, pending.Resolution.ResolvedAt, pending.Resolution.ResolvedBy));
        Assert.Single(log.Pending());
        // The spec's shapes keep their keys while a conflict waits: resolved_at (and resolved_by) are null, not absent.
        using (var held = JsonDocument.Parse(pending.ToJson()))
        {
            var resolution = held.RootElement.GetProperty("resolution");
            Assert.Equal((JsonValueKind.Null, JsonValueKind.Null), (resolution.GetProperty("resolved_at").ValueKind, resolution.GetProperty("resolved_by").ValueKind));
        }

        using (var entry = JsonDocument.Parse(JsonSerializer.Serialize(Assert.Single(log.ToReports()), SyncReport.JsonOptions)))
        {
            Assert.Equal(JsonValueKind.Null, entry.RootElement.GetProperty("resolved_at").ValueKind);
        }

        var (_, review) = engine.ResolveReview(outcome.Record, "email", "shop", "alice", Now);
        log.AppendResolution(review);

        var resolved = Assert.Single(log.ToRecords());
        Assert.Equal(("resolved", "alice", "shop@x"), (resolved.Status, resolved.Resolution.ResolvedBy, resolved.Resolution.ResolvedValues["email"]));
        Assert.Empty(log.Pending());
        Assert.Equal(2, log.History(pending.ConflictId).Count);
        Assert.Equal(["detected", "resolved", "resolved"], log.Entries.Select(e => e.Kind));
        var report = Assert.Single(log.ToReports());
        Assert.Equal(("manual_review", "shop@x"), (report.Resolution, report.ResolvedValue["email"]));

        using var lines = new StringWriter();
        log.WriteJsonLines(lines);
        var parsed = lines.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l)).ToList();
        Assert.Equal(3, parsed.Count);
        Assert.Equal("CUST123", parsed[0].RootElement.GetProperty("conflict").GetProperty("record_id").GetString());
        parsed.ForEach(p => p.Dispose());
    }
}
