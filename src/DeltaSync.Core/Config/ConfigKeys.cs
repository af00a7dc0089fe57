namespace DeltaSync.Core.Config;

/// <summary>The keys each block of the configuration file accepts; anything else is reported as unknown.</summary>
/// <remarks>Kept in step with <c>schema/deltasync.schema.json</c> by a test.</remarks>
internal static class ConfigKeys
{
    public static readonly string[] Root = ["sync", "cdc", "conflict_resolution", "state"];

    public static readonly string[] Sync = ["name", "source", "sources", "destination", "cdc_method", "frequency", "batch_size", "max_parallel_tables", "retry", "circuit_breaker", "relationships"];

    public static readonly string[] Retry = ["max_attempts", "initial_delay", "max_delay"];

    public static readonly string[] CircuitBreaker = ["failure_threshold", "break_duration"];

    public static readonly string[] Source = ["name", "type", "connection", "tables"];

    public static readonly string[] SourceEntry = ["name", "type", "connection", "tables", "cdc_method", "key_map", "clock_offset"];

    public static readonly string[] Destination = ["name", "type", "connection"];

    public static readonly string[] Table = ["name", "primary_key", "cdc_method", "updated_at_field", "created_at_field", "version_field", "sequence_field", "priority", "soft_delete"];

    public static readonly string[] SoftDelete = ["field", "deleted_values", "mode"];

    public static readonly string[] Relationship = ["parent", "child", "foreign_key", "on_delete"];

    public static readonly string[] Cdc = ["timestamp", "version", "changelog", "polling", "trigger", "hybrid"];

    public static readonly string[] Hybrid = ["base", "reconcile_interval", "ranges", "leaf_rows"];

    public static readonly string[] Timestamp = ["updated_at_field", "created_at_field", "timezone", "tolerance_window", "safety_margin", "max_future_skew"];

    public static readonly string[] Version = ["version_field", "sequence_field"];

    public static readonly string[] Changelog = ["type", "position", "slot_name", "publication_name", "snapshot_chunk_size"];

    public static readonly string[] Polling = ["interval", "query"];

    public static readonly string[] Trigger = ["change_table", "prune"];

    public static readonly string[] ConflictResolution = ["default_strategy", "source_priority", "strategies", "tolerance", "plugin", "notifications"];

    public static readonly string[] FieldStrategy = ["field", "strategy", "source_priority", "rule"];

    public static readonly string[] Tolerance = ["time_window", "manual_review_threshold", "fallback"];

    public static readonly string[] ConflictPlugin = ["assembly", "type"];

    public static readonly string[] Notifications = ["webhook", "threshold_per_run"];

    public static readonly string[] Webhook = ["url", "headers", "max_attempts"];

    public static readonly string[] State = ["storage", "checkpointing", "recovery", "backup"];

    public static readonly string[] Storage = ["type", "connection", "path"];

    public static readonly string[] Checkpointing = ["frequency", "interval"];

    public static readonly string[] Recovery = ["validate_on_start", "auto_repair", "reset_on_corruption"];

    public static readonly string[] Backup = ["interval", "keep", "path"];
}
