using System.Text.Json;
using System.Text.Json.Nodes;
using DeltaSync.Core.Config;
using DeltaSync.Core.Conflicts;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using NodaTime;
using NodaTime.Text;

namespace DeltaSync.Core.State;

/// <summary>One table's state as <c>status</c> and <c>state show</c> present it.</summary>
public sealed record TableState(
    string Table,
    string Stream,
    Checkpoint? Latest,
    string? Problem,
    long StoredVersions,
    string? LastRunId,
    string? LastRunStatus,
    Instant? LastRunAt,
    double? LagSeconds)
{
    /// <summary>The source of the stream, with several sources (<c>sync.sources</c>: one entry per source and table); null otherwise.</summary>
    public string? Source { get; init; }
}

/// <summary>The result of validating one stream's history.</summary>
public sealed record StreamValidation(string Stream, long Versions, long Invalid, IReadOnlyList<string> Problems)
{
    public bool IsValid => Problems.Count == 0;
}

/// <summary>
/// The operator's view of state: show, history, rollback, reset, validate, export and import, for any state store.
/// </summary>
public sealed class StateAdmin
{
    private readonly SyncConfig _config;
    private readonly IStateStore _store;
    private readonly CheckpointHistory _history;
    private readonly IClock _clock;

    public StateAdmin(SyncConfig config, IStateStore store, IClock clock)
    {
        _config = config;
        _store = store;
        _clock = clock;
        _history = new CheckpointHistory(store, clock);
    }

    /// <summary>How many runs <see cref="ShowAsync"/> reads first, and how far back it looks for a table they do not name.</summary>
    private const int RecentRuns = 5;

    /// <inheritdoc cref="RecentRuns"/>
    private const int OlderRuns = 200;

    public IReadOnlyList<TablePlan> Plans(IReadOnlyList<string>? tables = null) => TablePlan.Select(_config, tables);

    /// <summary>Per table: the newest checkpoint (or why it is unreadable), the last run and the lag.</summary>
    public async Task<IReadOnlyList<TableState>> ShowAsync(IReadOnlyList<string>? tables, CancellationToken cancellationToken)
    {
        // The newest few runs name every table as a rule; older ones are read only for a table they do not name (a
        // report lists every conflict of its run, so a stored run can be megabytes). Each report is parsed once.
        var plans = Plans(tables);
        var runs = (await _store.ReadRunsAsync(RecentRuns, cancellationToken).ConfigureAwait(false)).Select(RunTables.Of).ToList();
        if (runs.Count == RecentRuns && plans.Any(p => !runs.Any(r => r.StatusOf(p.Table, SourceOf(p)) is not null)))
        {
            runs = (await _store.ReadRunsAsync(OlderRuns, cancellationToken).ConfigureAwait(false)).Select(RunTables.Of).ToList();
        }

        var now = _clock.GetCurrentInstant();
        var result = new List<TableState>();
        foreach (var plan in plans)
        {
            var history = await _history.ListAsync(plan.Stream, int.MaxValue, cancellationToken).ConfigureAwait(false);
            var newest = history.Count == 0 ? default : history[0];
            var latest = newest.Parsed;
            // With several sources a table name appears once per source in a report: the entry is matched by source too.
            var source = SourceOf(plan);
            var lastRun = runs.FirstOrDefault(r => r.StatusOf(plan.Table, source) is not null);
            result.Add(new TableState(
                plan.Table,
                plan.Stream,
                latest,
                newest.Problem,
                history.Count,
                lastRun?.Run.RunId,
                lastRun?.StatusOf(plan.Table, source),
                lastRun?.Run.CompletedAt,
                latest?.HighWaterMark is { } hwm ? Math.Round((now - hwm).TotalSeconds, 1) : null) { Source = source });
        }

        return result;
    }

    public Task<IReadOnlyList<(StoredCheckpoint Stored, Checkpoint? Parsed, string? Problem)>> HistoryAsync(string table, string? source, CancellationToken cancellationToken) =>
        _history.ListAsync(StreamOf(table, source), int.MaxValue, cancellationToken);

    public Task<Checkpoint> RollbackAsync(string table, string? source, long version, CancellationToken cancellationToken) =>
        _history.RollbackAsync(StreamOf(table, source), version, cancellationToken);

    /// <summary>
    /// The one stream <paramref name="table"/> names: with several sources a table name may be read by more than one, and
    /// acting on the first would roll back (or show) a stream the operator did not mean, so the source must then be named.
    /// </summary>
    private string StreamOf(string table, string? source)
    {
        var plans = Plans([table]);
        var sources = string.Join(", ", plans.Select(p => p.SourceName).Order(StringComparer.Ordinal));
        if (source is not null)
        {
            plans = plans.Where(p => string.Equals(p.SourceName, source, StringComparison.Ordinal)).ToList();
            if (plans.Count == 0)
            {
                throw new ConfigException([new ConfigError(_config.ConfigPath, "--source", $"no source '{source}' reads table {table}; sources reading it: {sources}")]);
            }
        }

        if (plans.Count > 1)
        {
            throw new ConfigException([new ConfigError(_config.ConfigPath, "--source", $"table {table} is read by several sources ({sources}); name one with --source")]);
        }

        return plans[0].Stream;
    }

    /// <summary>
    /// Forgets tables: their checkpoint history, their ledger scope and committed checkpoint at the destination, and what
    /// the engine installed at the source (triggers, change rows). The next run starts with a snapshot.
    /// </summary>
    public Task<IReadOnlyList<string>> ResetAsync(IReadOnlyList<string>? tables, ISource? source, IDestination? destination, CancellationToken cancellationToken) =>
        ResetAsync(tables, _ => source, destination, cancellationToken);

    /// <summary>As above, with each table's own source (<c>sync.sources</c>: the one its stream reads).</summary>
    public async Task<IReadOnlyList<string>> ResetAsync(IReadOnlyList<string>? tables, Func<TablePlan, ISource?> sourceOf, IDestination? destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sourceOf);
        var done = new List<string>();
        foreach (var plan in Plans(tables))
        {
            var source = sourceOf(plan);
            await _store.DeleteStreamAsync(plan.Stream, cancellationToken).ConfigureAwait(false);
            if (destination is not null)
            {
                var others = Plans().Where(p => string.Equals(p.DestinationTable, plan.DestinationTable, StringComparison.OrdinalIgnoreCase) && p.SourceName != plan.SourceName).Select(p => p.SourceName).Distinct(StringComparer.Ordinal).ToList();
                if (others.Count > 0)
                {
                    // A table several sources write: what this source merged fast lives in the entries about to go, so it
                    // goes into the records' bases first (no later merge could attribute it otherwise).
                    await destination.MergeEpochAsync(plan.DestinationTable, advance: true, cancellationToken).ConfigureAwait(false);
                    await RecordMerger.FoldScopeAsync(new ConflictEngine(ConflictSession.PolicyOf(_config)), destination, plan.DestinationTable, plan.SourceName, others, _clock.GetCurrentInstant(), cancellationToken).ConfigureAwait(false);
                }

                await destination.ResetStreamAsync(plan.Stream, new LedgerScope(plan.DestinationTable, plan.SourceName), cancellationToken).ConfigureAwait(false);
            }

            if (source is not null)
            {
                await source.UninstallAsync(plan, cancellationToken).ConfigureAwait(false);
            }

            // With several sources a table is one stream per source: "customers (crm)", not "customers" three times.
            done.Add(plan.Label(_config.Sync.IsMultiSource));
        }

        return done;
    }

    /// <summary>Checks every stored version of each table: checksum, format, version numbering.</summary>
    public async Task<IReadOnlyList<StreamValidation>> ValidateAsync(IReadOnlyList<string>? tables, CancellationToken cancellationToken)
    {
        var result = new List<StreamValidation>();
        var now = _clock.GetCurrentInstant();
        foreach (var plan in Plans(tables))
        {
            var history = await _history.ListAsync(plan.Stream, int.MaxValue, cancellationToken).ConfigureAwait(false);
            var problems = new List<string>();
            foreach (var (stored, parsed, problem) in history)
            {
                if (parsed is null)
                {
                    problems.Add($"version {stored.Version}: {problem}");
                }
                else if (parsed.Version != stored.Version || parsed.Stream != plan.Stream)
                {
                    problems.Add($"version {stored.Version}: content says {parsed.Stream} version {parsed.Version}");
                }
                else if (parsed.HighWaterMark is { } hwm && hwm > now + Duration.FromDays(1) && stored.Version == history[0].Stored.Version)
                {
                    problems.Add($"version {stored.Version}: high-water mark {InstantPattern.ExtendedIso.Format(hwm)} is more than a day in the future");
                }
            }

            result.Add(new StreamValidation(plan.Stream, history.Count, history.Count(h => h.Parsed is null), problems));
        }

        return result;
    }

    /// <summary>
    /// Every stream's history, the dead letters, the conflict log and the manual review queue, as one JSON document
    /// (<c>export_version</c> 2; version 1, without the conflict blocks, is still imported).
    /// </summary>
    public async Task<string> ExportAsync(CancellationToken cancellationToken)
    {
        var streams = new JsonArray();
        foreach (var stream in await _store.ListStreamsAsync(cancellationToken).ConfigureAwait(false))
        {
            var versions = new JsonArray();
            foreach (var stored in (await _store.ReadHistoryAsync(stream, int.MaxValue, cancellationToken).ConfigureAwait(false)).Reverse())
            {
                versions.Add(new JsonObject
                {
                    ["version"] = stored.Version,
                    ["saved_at"] = InstantPattern.ExtendedIso.Format(stored.SavedAt),
                    ["payload"] = stored.Payload,
                });
            }

            streams.Add(new JsonObject { ["stream"] = stream, ["versions"] = versions });
        }

        var deadLetters = new JsonArray();
        foreach (var d in await _store.ReadDeadLettersAsync(null, int.MaxValue, cancellationToken).ConfigureAwait(false))
        {
            deadLetters.Add(new JsonObject
            {
                ["stream"] = d.Stream,
                ["table"] = d.Table,
                ["record_id"] = d.RecordId,
                ["raw_record"] = d.RawRecord,
                ["reason"] = d.Reason,
                ["error_class"] = d.ErrorClass.ToString().ToLowerInvariant(),
                ["position"] = d.Position.ToString(),
                ["failed_at"] = InstantPattern.ExtendedIso.Format(d.FailedAt),
                ["attempts"] = d.Attempts,
            });
        }

        var conflictLog = new JsonArray();
        foreach (var e in await _store.ReadConflictLogAsync(null, int.MaxValue, cancellationToken).ConfigureAwait(false))
        {
            conflictLog.Add(new JsonObject
            {
                ["entry_id"] = e.EntryId,
                ["conflict_id"] = e.ConflictId,
                ["stream"] = e.Stream,
                ["kind"] = e.Kind,
                ["logged_at"] = InstantPattern.ExtendedIso.Format(e.LoggedAt),
                ["json"] = e.Json,
            });
        }

        var reviews = new JsonArray();
        foreach (var r in await _store.ReadConflictReviewsAsync(null, int.MaxValue, cancellationToken).ConfigureAwait(false))
        {
            reviews.Add(new JsonObject
            {
                ["conflict_id"] = r.ConflictId,
                ["stream"] = r.Stream,
                ["table"] = r.Table,
                ["record_id"] = r.RecordId,
                ["key"] = r.Key,
                ["detected_at"] = InstantPattern.ExtendedIso.Format(r.DetectedAt),
                ["record"] = r.RecordJson,
            });
        }

        var document = new JsonObject
        {
            ["format"] = "deltasync-state-export",
            ["export_version"] = StateImport.CurrentExportVersion,
            ["state_version"] = Checkpoint.CurrentStateVersion,
            ["sync"] = _config.Name,
            ["exported_at"] = InstantPattern.ExtendedIso.Format(_clock.GetCurrentInstant()),
            ["streams"] = streams,
            ["dead_letters"] = deadLetters,
            ["conflict_log"] = conflictLog,
            ["conflict_reviews"] = reviews,
        };
        return document.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>
    /// Restores an export into this store, which may already hold state. Without <paramref name="replace"/>: versions the
    /// store has with the same payload are skipped, missing ones appended, and a version whose payload differs stops the
    /// import before anything is written (<see cref="StateImportConflictException"/>). With <paramref name="replace"/>:
    /// the streams in the file (history and queued dead letters) are removed first. Dead letters already queued are kept.
    /// </summary>
    /// <exception cref="FormatException">the document is not a state export, or is malformed (nothing was written).</exception>
    public Task<StateImportResult> ImportAsync(string json, bool replace, CancellationToken cancellationToken) =>
        new StateImport(_store).RunAsync(json, replace, cancellationToken);

    /// <summary>The source a table's entry in a report is matched by: with several sources a table appears once per source.</summary>
    private string? SourceOf(TablePlan plan) => _config.Sync.IsMultiSource ? plan.SourceName : null;

    /// <summary>A stored run with the status of each table its report names, parsed once.</summary>
    private sealed record RunTables(RunRecord Run, IReadOnlyList<(string? Table, string? Source, string? Status)> Tables)
    {
        public static RunTables Of(RunRecord run)
        {
            try
            {
                var tables = JsonNode.Parse(run.ReportJson)?["tables"]?.AsArray();
                return new RunTables(run, tables?.Select(t => (Text(t, "table"), Text(t, "source"), Text(t, "status"))).ToList() ?? []);
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException)
            {
                return new RunTables(run, []);
            }
        }

        /// <summary>The status the run gave <paramref name="table"/> (of <paramref name="source"/> when given), or null.</summary>
        public string? StatusOf(string table, string? source) => Tables.FirstOrDefault(t =>
            string.Equals(t.Table, table, StringComparison.OrdinalIgnoreCase)
            && (source is null || string.Equals(t.Source, source, StringComparison.Ordinal))).Status;

        private static string? Text(JsonNode? entry, string name) =>
            entry?[name] is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;
    }
}
