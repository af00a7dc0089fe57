using System.Security.Cryptography;
using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Diagnostics;
using DeltaSync.Core.Model;
using DeltaSync.Core.Reporting;
using DeltaSync.Core.State;
using Microsoft.Extensions.Logging;
using NodaTime;
using NodaTime.Text;

namespace DeltaSync.Core.Pipeline;

/// <summary>What to run.</summary>
/// <param name="Tables">Only these tables (all when empty).</param>
/// <param name="FullRefresh">Re-read every table from the start (the ledger keeps unchanged rows unchanged).</param>
/// <param name="ReportPath">Where to write the report; null for the <c>reports/</c> folder beside the state.</param>
public sealed record RunOptions(IReadOnlyList<string> Tables, bool FullRefresh, string? ReportPath)
{
    /// <summary>Reconcile each table with the destination now instead of its capture pass (<c>deltasync reconcile</c>).</summary>
    public bool Reconcile { get; init; }
}

/// <summary>A finished run: its report and where the report was written.</summary>
public sealed record RunOutcome(SyncReport Report, string ReportPath)
{
    /// <summary>
    /// The pass was cut short by the stop request and nothing else went wrong: every table completed or was stopped,
    /// with no error and nothing dead-lettered. In <c>--follow</c> that is how a run ends, not a partial result.
    /// </summary>
    public bool OnlyStopped { get; init; }
}

/// <summary>
/// Runs a configuration: opens the source, destination and state store, runs the table pipelines through the
/// priority scheduler, and writes the sync report. <see cref="FollowAsync"/> keeps doing so on <c>sync.frequency</c>.
/// </summary>
public sealed class SyncEngine
{
    private const int ProcessedIdsInReport = 100;

    private readonly SyncConfig _config;
    private readonly ConnectorRegistry _connectors;
    private readonly IClock _clock;
    private readonly ILogger _logger;

    public SyncEngine(SyncConfig config, ConnectorRegistry connectors, IClock clock, ILogger logger)
    {
        _config = config;
        _connectors = connectors;
        _clock = clock;
        _logger = logger;
    }

    /// <summary>One pass over the selected tables.</summary>
    public async Task<RunOutcome> RunOnceAsync(RunOptions options, IProgress<TableProgress>? progress, CancellationToken stop)
    {
        await using var endpoints = await Endpoints.OpenAsync(this, stop).ConfigureAwait(false);
        return await RunPassAsync(options, progress, endpoints, stop).ConfigureAwait(false);
    }

    /// <summary>The state store, source and destination of a run, opened once for every pass of <c>--follow</c>.</summary>
    private sealed class Endpoints : IAsyncDisposable
    {
        private Endpoints(IStateStore state, IReadOnlyDictionary<string, ISource> sources, IDestination destination, RetryOptions retry)
        {
            State = state;
            Sources = sources;
            Destination = destination;
            Applier = new BatchApplier(destination, retry);
        }

        public IStateStore State { get; }

        /// <summary>Every source by name (one for <c>sync.source</c>).</summary>
        public IReadOnlyDictionary<string, ISource> Sources { get; }

        public IDestination Destination { get; }

        /// <summary>Writes to the destination, with one circuit breaker for every table and pass.</summary>
        public BatchApplier Applier { get; }

        /// <summary>Ids of runs that finished (read once; passes of <c>--follow</c> add their own).</summary>
        public HashSet<string>? CompletedRuns { get; set; }

        /// <summary>Per destination table, the lock serializing read-merge-apply of the sources writing it.</summary>
        public DestinationTableLocks Locks { get; } = new();

        public static async Task<Endpoints> OpenAsync(SyncEngine engine, CancellationToken stop)
        {
            // Sources and destination first: connectors may start connecting in the background as they open, which
            // then overlaps with opening the state store.
            var sources = new Dictionary<string, ISource>(StringComparer.Ordinal);
            IDestination? destination = null;
            try
            {
                foreach (var endpoint in engine._config.Sync.Sources)
                {
                    var role = engine._config.Sync.IsMultiSource ? $"source '{endpoint.Name}'" : "source";
                    sources[endpoint.Name] = await engine.OpenAsync(endpoint, role, (c, e) => c.OpenSourceAsync(e, engine._config, stop)).ConfigureAwait(false);
                }

                destination = await engine.OpenAsync(engine._config.Sync.Destination, "destination", (c, e) => c.OpenDestinationAsync(e, engine._config, stop)).ConfigureAwait(false);
                var state = await StateStores.OpenAsync(engine._config, engine._connectors, stop).ConfigureAwait(false);
                return new Endpoints(state, sources, destination, engine._config.Sync.Retry);
            }
            catch
            {
                if (destination is not null)
                {
                    await destination.DisposeAsync().ConfigureAwait(false);
                }

                foreach (var source in sources.Values)
                {
                    await source.DisposeAsync().ConfigureAwait(false);
                }

                throw;
            }
        }

        public async ValueTask DisposeAsync()
        {
            await Destination.DisposeAsync().ConfigureAwait(false);
            foreach (var source in Sources.Values)
            {
                await source.DisposeAsync().ConfigureAwait(false);
            }

            await State.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task<RunOutcome> RunPassAsync(RunOptions options, IProgress<TableProgress>? progress, Endpoints endpoints, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(options);
        var plans = SelectTables(options.Tables);
        var runId = NewRunId(_clock.GetCurrentInstant());
        var started = _clock.GetCurrentInstant();
        var state = endpoints.State;
        var history = new CheckpointHistory(state, _clock);
        var completedRuns = endpoints.CompletedRuns ??=
            (await state.ReadRunIdsAsync(RunRecord.Kept, stop).ConfigureAwait(false)).ToHashSet(StringComparer.Ordinal);
        Log.RunStarted(_logger, runId, plans.Count, string.Join(", ", _config.Sync.Sources.Select(s => ConnectionText.Redact(s.Connection))), ConnectionText.Redact(_config.Sync.Destination.Connection));
        var conflicts = ConflictSession.For(_config, TablePlan.FromConfig(_config), endpoints.Locks, runId);
        var services = new PipelineServices(_config, endpoints.Sources[plans.Count > 0 ? plans[0].SourceName : _config.Sync.Source.Name], endpoints.Destination, history, _clock, _logger, runId, completedRuns, endpoints.Applier)
        {
            Conflicts = conflicts,
        };
        var results = await PriorityScheduler.RunAsync(
            plans,
            p => p.Priority,
            _config.Sync.MaxParallelTables,
            p => Task.Run(() => new TablePipeline(p, services with { Source = endpoints.Sources[p.SourceName] }).RunAsync(options.FullRefresh, progress, stop, options.Reconcile))).ConfigureAwait(false);
        var report = BuildReport(runId, started, _clock.GetCurrentInstant(), results, options.FullRefresh);
        if (conflicts is not null)
        {
            report = await conflicts.FinishRunAsync(report, state, _logger, stop).ConfigureAwait(false);
        }

        if (options.Reconcile)
        {
            report = report with { Metadata = report.Metadata with { Mode = "reconcile" } };
        }
        if (await StateBackup.AfterRunAsync(_config, state, _clock, stop).ConfigureAwait(false) is { } backupWarning)
        {
            report = report with { Warnings = [.. report.Warnings, backupWarning] };
        }

        try
        {
            // The summary without the conflicts' details: the conflict log holds every one, and the report file lists
            // them; a run with thousands of conflicts would otherwise store megabytes per run, for 1,000 runs.
            var summary = report.Conflicts.Count == 0 ? report : report with { Conflicts = [] };
            await state.AppendRunAsync(new RunRecord(runId, _clock.GetCurrentInstant(), report.Metadata.Status, summary.ToJson()), CancellationToken.None).ConfigureAwait(false);
            completedRuns.Add(runId);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The report is still written (it is how the operator learns what happened); the next run, not finding this
            // one in the store, notes that it did not finish and resumes from the checkpoints — nothing is lost.
            var error = new ReportError("*", ErrorClass.Transient.ToString().ToLowerInvariant(), $"the run summary could not be saved to the state store ({state.Description}): {e.Message}");
            report = report with
            {
                Metadata = report.Metadata with { Status = report.Metadata.Status == "completed" ? "partial" : report.Metadata.Status },
                Statistics = report.Statistics with { Errors = report.Statistics.Errors + 1 },
                Errors = [.. report.Errors, error],
            };
        }

        var path = options.ReportPath is null ? DefaultReportPath(runId) : Path.GetFullPath(options.ReportPath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await File.WriteAllTextAsync(path, report.ToJson(), CancellationToken.None).ConfigureAwait(false);
        if (options.ReportPath is null)
        {
            PruneReports(Path.GetDirectoryName(path)!);
        }

        Log.RunFinished(_logger, runId, report.Metadata.Status, report.Metadata.DurationSeconds);
        return new RunOutcome(report, path)
        {
            OnlyStopped = stop.IsCancellationRequested && results.Any(r => r.Stopped)
                && results.All(r => (r.Status == TableStatus.Completed || r.Stopped) && r.Errors.Count == 0 && r.DeadLettered == 0),
        };
    }

    /// <summary>
    /// Runs passes until <paramref name="stop"/> is cancelled: continuously for <c>realtime</c> (back to back while passes
    /// write changes, pausing <c>cdc.polling.interval</c> after a pass that wrote none), else once per <c>sync.frequency</c>. The pass in flight ends after its current batch.
    /// </summary>
    public async Task FollowAsync(RunOptions options, IProgress<TableProgress>? progress, Func<RunOutcome, Task> onRun, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(onRun);
        var frequency = _config.Sync.Frequency;
        // Connections (and their pools) live across passes: a pass pays for its work, not for connecting again.
        await using var endpoints = await Endpoints.OpenAsync(this, stop).ConfigureAwait(false);
        while (!stop.IsCancellationRequested)
        {
            var started = _clock.GetCurrentInstant();
            var outcome = await RunPassAsync(options, progress, endpoints, stop).ConfigureAwait(false);
            await onRun(outcome).ConfigureAwait(false);
            // Realtime: a pass that wrote changes is followed at once (more are likely waiting, and pausing would only
            // add the interval to their lag); a pass that wrote nothing waits the polling interval — including one
            // that only re-read rows already applied (a timestamp cursor's lookback), which must not spin.
            var statistics = outcome.Report.Statistics;
            var busy = statistics.RecordsInserted + statistics.RecordsUpdated + statistics.RecordsDeleted > 0;
            var wait = frequency.IsRealtime ? (busy ? Duration.Zero : frequency.Interval) : frequency.Interval - (_clock.GetCurrentInstant() - started);
            if (wait > Duration.Zero)
            {
                try
                {
                    await Task.Delay(wait.ToTimeSpan(), stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
    }

    /// <summary>The resolved plans of the tables to run; unknown names are a usage error.</summary>
    public IReadOnlyList<TablePlan> SelectTables(IReadOnlyList<string> tables) => TablePlan.Select(_config, tables);

    private string DefaultReportPath(string runId) => Path.Combine(StateStores.Folder(_config), "reports", runId + ".json");

    /// <summary>
    /// Keeps the report files of the newest <see cref="RunRecord.Kept"/> runs in the default folder, as the state store
    /// keeps their summaries: <c>run --follow</c> writes one per pass, many thousands a day. Run ids sort by time;
    /// files not named like one are left alone. Housekeeping: a file that cannot be removed stays for the next run.
    /// </summary>
    private static void PruneReports(string folder)
    {
        try
        {
            var reports = Directory.GetFiles(folder, "sync_*.json");
            if (reports.Length <= RunRecord.Kept)
            {
                return;
            }

            Array.Sort(reports, StringComparer.Ordinal);
            foreach (var old in reports.AsSpan(0, reports.Length - RunRecord.Kept))
            {
                File.Delete(old);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Kept for the next run.
        }
    }

    private async Task<T> OpenAsync<T>(EndpointOptions endpoint, string role, Func<IConnector, EndpointOptions, Task<T>> open)
    {
        var connector = _connectors.Find(endpoint.Connection)
            ?? throw new SyncException(ErrorClass.Fatal, $"no connector handles the {role} connection '{ConnectionText.Redact(endpoint.Connection)}' (available: {string.Join(", ", _connectors.Connectors.Select(c => c.Name))})");
        return await open(connector, endpoint).ConfigureAwait(false);
    }

    private SyncReport BuildReport(string runId, Instant started, Instant completed, IReadOnlyList<TableRunResult> results, bool fullRefresh)
    {
        var failed = results.Count(r => r.Status == TableStatus.Failed);
        var status = failed == results.Count && results.Count > 0 ? "failed"
            : failed > 0 || results.Any(r => r.Status == TableStatus.Partial) ? "partial"
            : "completed";
        var ids = results.SelectMany(r => r.ProcessedRecordIds.Select(id => r.Plan.Table + ":" + id)).Take(ProcessedIdsInReport).ToList();
        var written = results.Sum(r => r.Inserted + r.Updated + r.Deleted);
        var highWaterMark = results.Where(r => r.HighWaterMark is not null).Select(r => r.HighWaterMark!.Value).DefaultIfEmpty().Max();
        var tables = results.Select(r => new TableReport(
            r.Plan.Table,
            r.RecordsProcessed,
            r.Inserted,
            r.Updated,
            r.Deleted,
            r.Status == TableStatus.Failed ? null : Iso(r.CompletedAt),
            r.Status.ToString().ToLowerInvariant(),
            r.Plan.Method.ToString().ToLowerInvariant(),
            r.Unchanged,
            r.DeadLettered,
            r.HighWaterMark is { } h ? Iso(h) : null,
            r.Position,
            r.CheckpointVersion,
            r.ResumedFromVersion,
            Math.Round((r.CompletedAt - r.StartedAt).TotalSeconds, 3),
            r.Error)
        {
            Watermark = r.Watermark is { } w ? Iso(w) : null,
            RecordsOutOfOrder = r.Counts.OutOfOrder,
            RecordsLate = r.Counts.Late,
            RecordsBackdated = r.Counts.Backdated,
            RecordsSoftDeleted = r.Counts.SoftDeleted,
            DelayedDeletesIgnored = r.Counts.DelayedDeletesIgnored,
            RevivalsRefused = r.Counts.RevivalsRefused,
            VersionResets = r.Counts.VersionResets,
            ChildRowsDeleted = r.Counts.ChildRowsDeleted,
            ChildRowsSetNull = r.Counts.ChildRowsNulled,
            NullTimestamps = r.Timestamps is { } t ? new NullTimestampsReport(t.CreatedAtFallback, t.RowHash) : null,
            DstResolved = r.Timestamps is { } d ? new DstResolvedReport(d.DstGap, d.DstOverlap) : null,
            RecordsFutureTimestamp = r.Timestamps?.Future,
            Reconciliation = r.Reconciliation is { } reconciled ? ReconciliationReport.From(reconciled) : null,
            InitialLoad = r.InitialLoad,
            Source = _config.Sync.IsMultiSource ? r.Plan.SourceName : null,
            ConflictsDetected = r.ConflictsDetected > 0 ? r.ConflictsDetected : null,
        }).ToList();
        return new SyncReport(
            new ReportMetadata(
                runId,
                string.Join(",", _config.Sync.Sources.Select(s => s.Name)),
                _config.Sync.Destination.Name,
                Iso(started),
                Iso(completed),
                Math.Round((completed - started).TotalSeconds, 3),
                status,
                _config.Name,
                fullRefresh ? "full_refresh" : "incremental"),
            new ReportStatistics(
                results.Sum(r => r.RecordsProcessed),
                results.Sum(r => r.Inserted),
                results.Sum(r => r.Updated),
                results.Sum(r => r.Deleted),
                0,
                0,
                results.Sum(r => r.Errors.Count),
                results.Sum(r => r.Unchanged),
                results.Sum(r => r.DeadLettered)),
            tables,
            [],
            results.SelectMany(r => r.LateArrivals.Select(l => l with { Table = r.Plan.Table })).ToList(),
            new ReportCheckpoint(
                Iso(completed),
                ids,
                written,
                written > ids.Count,
                results.Any(r => r.HighWaterMark is not null) ? Iso(highWaterMark) : null,
                Checkpoint.CurrentStateVersion),
            results.SelectMany(r => r.Errors).ToList(),
            results.SelectMany(r => r.Warnings).Concat(ConfigWarnings()).Append($"Checkpoints are kept in {StateStores.Describe(_config)}").ToList());
    }

    /// <summary>Settings that are valid but not used by this run, said once per report rather than silently ignored.</summary>
    private IEnumerable<string> ConfigWarnings()
    {
        if (_config.Cdc.Polling.Query is not null)
        {
            yield return "cdc.polling.query is not used: polling CDC compares every row's hash with the ledger, which also finds hard deletes";
        }
    }

    private static string Iso(Instant instant) => InstantPattern.ExtendedIso.Format(instant);

    private static string NewRunId(Instant now) =>
        "sync_" + now.ToDateTimeUtc().ToString("yyyyMMdd'T'HHmmss", System.Globalization.CultureInfo.InvariantCulture) + "_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
}
