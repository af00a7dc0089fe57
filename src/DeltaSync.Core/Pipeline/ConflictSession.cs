using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using DeltaSync.Core.Config;
using DeltaSync.Core.Conflicts;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Reporting;
using DeltaSync.Core.State;
using Microsoft.Extensions.Logging;
using NodaTime;

namespace DeltaSync.Core.Pipeline;

/// <summary>
/// Conflict handling for one run of a configuration where several sources write one destination table: the engine
/// deciding merges, the per-destination-table locks, the run's <see cref="ConflictLog"/>, and what goes to the state
/// store (conflict log entries and the review queue) and the report at the end.
/// </summary>
public sealed class ConflictSession
{
    private static readonly HttpClient WebhookClient = new() { Timeout = TimeSpan.FromSeconds(30) };

    private readonly SyncConfig _config;
    private readonly IReadOnlySet<string> _sharedTables;
    private readonly IReadOnlyList<TablePlan> _plans;

    private ConflictSession(SyncConfig config, ConflictEngine engine, IReadOnlySet<string> sharedTables, IReadOnlyList<TablePlan> plans, DestinationTableLocks locks, string runId)
    {
        _config = config;
        Engine = engine;
        _sharedTables = sharedTables;
        _plans = plans;
        Locks = locks;
        RunId = runId;
    }

    /// <summary>Decides merges.</summary>
    public ConflictEngine Engine { get; }

    private static readonly AsyncLocal<bool> s_fullMergeOnly = new();

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _generations = new(StringComparer.OrdinalIgnoreCase);

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _epochsAdvanced = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Serializes read-merge-apply per destination table.</summary>
    public DestinationTableLocks Locks { get; }

    /// <summary>The run's conflicts and resolutions, in the order they happened.</summary>
    public ConflictLog Log { get; } = new();

    public string RunId { get; }

    /// <summary>
    /// The session of a run, or null when no destination table is written by more than one source (every table then
    /// keeps the single-source path).
    /// </summary>
    public static ConflictSession? For(SyncConfig config, IReadOnlyList<TablePlan> plans, DestinationTableLocks locks, string runId)
    {
        ArgumentNullException.ThrowIfNull(config);
        var shared = TablePlan.SharedDestinationTables(plans);
        return shared.Count == 0 ? null : new ConflictSession(config, new ConflictEngine(PolicyOf(config)), shared, plans, locks, runId);
    }

    /// <summary>The policy of <paramref name="config"/>, with its plug-in loaded when one is configured.</summary>
    public static ConflictPolicy PolicyOf(SyncConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var options = config.ConflictResolution;
        var plugin = options.Plugin is { } p ? ConflictPluginLoader.Load(p, config.ConfigPath) : null;
        return ConflictPolicy.From(options, plugin);
    }

    /// <summary>Whether <paramref name="plan"/>'s destination table goes through conflict detection.</summary>
    public bool Covers(TablePlan plan) => _sharedTables.Contains(plan.DestinationTable);

    /// <summary>The sources other than <paramref name="plan"/>'s that write its destination table.</summary>
    public IReadOnlyList<string> OtherSources(TablePlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        return _plans
            .Where(p => string.Equals(p.DestinationTable, plan.DestinationTable, StringComparison.OrdinalIgnoreCase) && p.SourceName != plan.SourceName)
            .Select(p => p.SourceName)
            .Distinct(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>
    /// The change-tracking columns (<c>updated_at_field</c>, <c>version_field</c>, <c>sequence_field</c>) of every
    /// source writing <paramref name="plan"/>'s destination table.
    /// </summary>
    public IReadOnlyList<string> TrackingColumns(TablePlan plan) => TrackingColumns(_plans, plan);

    /// <inheritdoc cref="TrackingColumns(TablePlan)"/>
    public static IReadOnlyList<string> TrackingColumns(IEnumerable<TablePlan> plans, TablePlan plan)
    {
        ArgumentNullException.ThrowIfNull(plans);
        ArgumentNullException.ThrowIfNull(plan);
        return plans
            .Where(p => string.Equals(p.DestinationTable, plan.DestinationTable, StringComparison.OrdinalIgnoreCase))
            .SelectMany(p => new[] { p.UpdatedAtField, p.VersionField, p.SequenceField })
            .OfType<string>()
            .Distinct(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>What the merge of a batch of <paramref name="plan"/>'s knows besides its changes.</summary>
    public MergeContext MergeContext(TablePlan plan, ILedger ledger, IReadOnlyDictionary<RecordKey, LedgerEntry> previous, long? epoch) =>
        new(ledger, OtherSources(plan), previous, epoch) { TrackingColumns = TrackingColumns(plan) };

    /// <summary>
    /// Whether records of <paramref name="plan"/>'s table may take the fast merge (<see cref="SourceMergeState"/>): two
    /// sources write it, and the policy can end no conflict with the row unchanged but the record's state changed in a
    /// way the other source's fast merge would miss (<see cref="ConflictPolicy.AllowsFastMerge"/>). With three or more
    /// sources a write that two of them agree on keeps its writer, so it takes the full merge.
    /// </summary>
    public bool AllowsFastMerge(TablePlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (s_fullMergeOnly.Value)
        {
            return false;
        }

        var others = OtherSources(plan);
        return others.Count == 1 && Engine.Policy.AllowsFastMerge([plan.SourceName, others[0]]);
    }

    /// <summary>How many batches this session has applied to <paramref name="destinationTable"/> (moved on under the table's lock).</summary>
    public long Generation(string destinationTable) => _generations.GetValueOrDefault(destinationTable);

    /// <summary>Counts a batch applied to <paramref name="destinationTable"/> (call while holding its lock).</summary>
    public void Advance(string destinationTable) => _generations.AddOrUpdate(destinationTable, 1, static (_, g) => g + 1);

    /// <summary>
    /// While set in the calling flow, every record takes the full merge (tests compare the fast merge with it).
    /// </summary>
    internal static bool FullMergeOnly
    {
        get => s_fullMergeOnly.Value;
        set => s_fullMergeOnly.Value = value;
    }

    /// <summary>
    /// The merge epoch a batch of <paramref name="plan"/>'s table merges under: the destination's current one when the
    /// table's records may take the fast merge; null when they may not, after moving the epoch on (once per session and
    /// table) so that no state written before counts once this run may have changed records without changing rows.
    /// </summary>
    public async Task<long?> MergeEpochAsync(IDestination destination, TablePlan plan, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(plan);
        if (!destination.Ledger.KeepsMergeState)
        {
            return null;
        }

        if (AllowsFastMerge(plan))
        {
            return await destination.MergeEpochAsync(plan.DestinationTable, advance: false, cancellationToken).ConfigureAwait(false);
        }

        if (_epochsAdvanced.TryAdd(plan.DestinationTable, true))
        {
            await destination.MergeEpochAsync(plan.DestinationTable, advance: true, cancellationToken).ConfigureAwait(false);
        }

        return null;
    }

    /// <summary>
    /// Starts logging what a batch's merges produced (<see cref="RecordAsync"/>); null when there is nothing to log.
    /// Unless the state store is the destination's own storage (<see cref="IDestination.SharesStorageWith"/>: a SQLite
    /// file whose only writer the batch holds until it commits), the log is written while the destination writes the
    /// batch: the commit awaits it (<see cref="ApplyUnit.BeforeCommit"/>).
    /// </summary>
    public ConflictLogWrite? StartRecording(IStateStore store, IDestination destination, TablePlan plan, IReadOnlyList<(Model.RecordKey Key, MergeOutcome Outcome)> outcomes, Instant now)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(outcomes);
        if (outcomes.Count == 0)
        {
            return null;
        }

        var storage = _config.State.Storage;
        var overlapped = storage.Type != StateStorageType.Database || !destination.SharesStorageWith(storage.Location, _config.BaseDirectory);
        // The run's log once; the store's write may be started again (it keeps every entry once).
        AppendToRunLog(outcomes);
        return new ConflictLogWrite(ct => StoreAsync(store, plan, outcomes, now, ct), overlapped);
    }

    /// <summary>
    /// Logs what a batch's merges produced — in the run's log and, before the batch commits, in the state store's
    /// conflict log and review queue (a crash before the commit re-detects the same conflicts under the same ids, and
    /// the store does not log them twice).
    /// </summary>
    public Task RecordAsync(IStateStore store, TablePlan plan, IReadOnlyList<(Model.RecordKey Key, MergeOutcome Outcome)> outcomes, Instant now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(outcomes);
        AppendToRunLog(outcomes);
        return StoreAsync(store, plan, outcomes, now, cancellationToken);
    }

    private void AppendToRunLog(IReadOnlyList<(Model.RecordKey Key, MergeOutcome Outcome)> outcomes)
    {
        foreach (var (_, outcome) in outcomes)
        {
            Log.Append(outcome);
        }
    }

    /// <summary>The state store's part of <see cref="RecordAsync"/>: conflict log entries and review queue items (the store keeps each once).</summary>
    private static async Task StoreAsync(IStateStore store, TablePlan plan, IReadOnlyList<(Model.RecordKey Key, MergeOutcome Outcome)> outcomes, Instant now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(plan);
        var entries = new List<ConflictLogRecord>();
        var reviews = new List<ConflictReview>();
        foreach (var (key, outcome) in outcomes)
        {
            foreach (var resolved in outcome.Conflicts)
            {
                // Stored compact (commands that show it parse and indent it again).
                var recordJson = JsonSerializer.Serialize(ConflictRecords.ToRecord(resolved), ConflictLogEntry.LineOptions);
                var id = resolved.Conflict.ConflictId;
                entries.Add(new ConflictLogRecord($"{id}:detected", id, plan.Stream, ConflictLogEntry.Kinds.Detected, now, recordJson));
                var resolution = ResolutionJson(resolved.Resolution);
                entries.Add(new ConflictLogRecord($"{id}:resolved:{Digest(resolution)}", id, plan.Stream, ConflictLogEntry.Kinds.Resolved, now, resolution));
                if (resolved.Resolution.NeedsReview)
                {
                    reviews.Add(new ConflictReview(id, plan.Stream, plan.DestinationTable, resolved.Conflict.RecordId, Convert.ToHexStringLower(key.Encoded), resolved.Conflict.DetectedAt, recordJson));
                }
            }

            foreach (var held in outcome.HeldUpdates)
            {
                var json = JsonSerializer.Serialize(
                    new { conflict_id = held.ConflictId, record_id = held.RecordId, field = held.Field, source = held.Candidate.Source, timestamp = ConflictRecords.Time(held.Candidate.Stamp.Time), deleted = held.Candidate.Deleted, values = held.Candidate.Values },
                    ConflictLogEntry.LineOptions);
                entries.Add(new ConflictLogRecord($"{held.ConflictId}:held:{held.Field}:{held.Candidate.Stamp}", held.ConflictId, plan.Stream, ConflictLogEntry.Kinds.HeldUpdate, now, json));
            }
        }

        if (entries.Count > 0)
        {
            await store.AppendConflictLogAsync(entries, cancellationToken).ConfigureAwait(false);
        }

        if (reviews.Count > 0)
        {
            await store.AddConflictReviewsAsync(reviews, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Adds the run's conflicts to the report (<c>conflicts</c>, <c>conflicts_detected</c>, <c>conflicts_resolved</c>)
    /// and notifies (<c>conflict_resolution.notifications</c>) when they need attention; an unreachable webhook is a warning.
    /// </summary>
    public async Task<SyncReport> FinishRunAsync(SyncReport report, IStateStore state, ILogger logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(report);
        var current = Log.Current();
        var pending = current.Count(c => c.Resolution.NeedsReview);
        var warnings = report.Warnings.ToList();
        if (pending > 0)
        {
            warnings.Add($"{pending} conflict(s) wait for manual review: deltasync conflicts list --config {_config.ConfigPath}");
        }

        if (_config.ConflictResolution.Notifications is { } notifications)
        {
            // The spec's records only for a notifier (a run with many conflicts need not build them twice).
            var records = current.Select(ConflictRecords.ToRecord).ToList();
            var notifier = new ConflictNotifier(WebhookClient, notifications, logger);
            var result = await notifier.NotifyAsync(_config.Name, RunId, records, cancellationToken).ConfigureAwait(false);
            if (result.Needed && notifications.Webhook is not null && !result.Delivered)
            {
                warnings.Add($"The conflict webhook could not be notified after {result.Attempts} attempt(s){(result.StatusCode is { } code ? $" (HTTP {code})" : "")}: {result.Reason}");
            }
        }

        return report with
        {
            Statistics = report.Statistics with { ConflictsDetected = current.Count, ConflictsResolved = current.Count - pending },
            Conflicts = current.Select(c => ConflictRecords.ToReport(c.Conflict, c.Resolution)).ToList(),
            Warnings = warnings,
        };
    }

    /// <summary>A resolution as the log's JSON (the spec's <c>resolution</c> block, plus confidence and held fields).</summary>
    public static string ResolutionJson(ConflictResolution resolution)
    {
        ArgumentNullException.ThrowIfNull(resolution);
        var record = ConflictRecords.ToRecord(
            new Conflict(resolution.ConflictId, "", ConflictType.Update, [], [], Instant.MinValue),
            resolution).Resolution;
        return JsonSerializer.Serialize(new { conflict_id = resolution.ConflictId, resolution = record }, ConflictLogEntry.LineOptions);
    }

    private static string Digest(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)).AsSpan(0, 8));
}

/// <summary>
/// A batch's conflict log being written to the state store (<see cref="ConflictSession.StartRecording"/>): started at
/// once when <see cref="Overlapped"/> (the destination's commit then waits for it), else when first awaited. A failed
/// write is started again by the next wait (a retried commit writes the log again; the store keeps entries once).
/// </summary>
public sealed class ConflictLogWrite
{
    private readonly Func<CancellationToken, Task> _write;
    private Task? _task;

    internal ConflictLogWrite(Func<CancellationToken, Task> write, bool overlapped)
    {
        _write = write;
        Overlapped = overlapped;
        if (overlapped)
        {
            _task = Task.Run(() => _write(CancellationToken.None));
        }
    }

    /// <summary>Whether the log is written while the destination writes the batch.</summary>
    public bool Overlapped { get; }

    /// <summary>The write under way or done, if started.</summary>
    internal Task? Started => _task;

    /// <summary>Completes when the log is stored.</summary>
    public Task WaitAsync(CancellationToken cancellationToken)
    {
        if (_task is null || _task.IsFaulted || _task.IsCanceled)
        {
            _task = _write(cancellationToken);
        }

        return _task;
    }

    /// <summary>Observes a write nobody waited for (the batch failed before its commit), so its failure is not left unobserved.</summary>
    internal void Observe() => _task?.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
}

