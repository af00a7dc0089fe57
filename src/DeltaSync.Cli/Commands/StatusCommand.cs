using DeltaSync.Cli.Output;
using DeltaSync.Core.State;
using NodaTime;
using NodaTime.Text;
using Spectre.Console.Cli;

namespace DeltaSync.Cli.Commands;

/// <summary>Per table: last run, cursor, high-water mark, lag and counts.</summary>
public sealed class StatusCommand : AsyncCommand<TableSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, TableSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var config = CliHost.LoadConfig(settings.Config);
        await using var store = await StateStores.OpenAsync(config, CliHost.Connectors(), cancellationToken).ConfigureAwait(false);
        var admin = new StateAdmin(config, store, SystemClock.Instance);
        var tables = await admin.ShowAsync(settings.Tables, cancellationToken).ConfigureAwait(false);
        var captures = await CapturesAsync(config, settings.Tables, cancellationToken).ConfigureAwait(false);
        if (settings.Json)
        {
            Terminal.WriteJson(new
            {
                sync = config.Name,
                state = store.Description,
                tables = tables.Select(t => StateJson.Table(t, captures.GetValueOrDefault(t.Stream))),
            });
            return ExitCodes.Completed;
        }

        Terminal.Line($"sync '{config.Name}', state in {store.Description}");
        // With several sources one table has a row per source: the source column tells them apart.
        var bySource = tables.Any(t => t.Source is not null);
        string[] headers = ["table", "last run", "status", "cursor", "high-water mark", "lag", "processed", "inserted", "updated", "deleted", "version"];
        Terminal.Table(
            bySource ? ["source", .. headers] : headers,
            tables.Select(t => new[]
            {
                t.Table,
                t.LastRunAt is { } at ? InstantPattern.General.Format(at) : "never",
                t.LastRunStatus ?? "-",
                t.Latest?.Position.ToString() ?? (t.Problem is null ? "-" : "CORRUPT: " + t.Problem),
                t.Latest?.HighWaterMark is { } h ? InstantPattern.General.Format(h) : "-",
                t.LagSeconds is { } lag ? FormatLag(lag) : "-",
                N(t.Latest?.Totals.RecordsProcessed), N(t.Latest?.Totals.Inserted), N(t.Latest?.Totals.Updated), N(t.Latest?.Totals.Deleted),
                t.Latest is null ? "-" : "v" + t.Latest.Version,
            }).Select((row, i) => bySource ? [tables[i].Source ?? "-", .. row] : row));
        foreach (var t in tables)
        {
            if (captures.TryGetValue(t.Stream, out var capture))
            {
                Terminal.Line(t.Source is null ? $"{t.Table}: {capture}" : $"{t.Source}/{t.Table}: {capture}");
            }
        }

        return ExitCodes.Completed;
    }

    /// <summary>
    /// What each table's source says about its capture (a slot's retained WAL…). An unreachable source does not fail
    /// <c>status</c>: the state is still shown, with the reason the source could not be asked.
    /// </summary>
    /// <remarks>Keyed by stream: with several sources one table has a capture per source.</remarks>
    private static async Task<Dictionary<string, string>> CapturesAsync(Core.Config.SyncConfig config, IReadOnlyList<string>? tables, CancellationToken cancellationToken)
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var plans = Core.Connectors.TablePlan.Select(config, tables);
        if (!plans.Any(p => p.Method is Core.Config.CdcMethod.Changelog or Core.Config.CdcMethod.Trigger))
        {
            return result;
        }

        // Each table is described by the source its stream reads (sync.sources: several).
        foreach (var group in plans.GroupBy(p => p.SourceName, StringComparer.Ordinal))
        {
            var endpoint = config.Sync.SourceNamed(group.Key);
            var connector = CliHost.Connectors().Find(endpoint.Connection);
            if (connector is null)
            {
                continue;
            }

            try
            {
                await using var source = await connector.OpenSourceAsync(endpoint, config, cancellationToken).ConfigureAwait(false);
                foreach (var plan in group)
                {
                    if (await source.DescribeCaptureAsync(plan, cancellationToken).ConfigureAwait(false) is { } text)
                    {
                        result[plan.Stream] = text;
                    }
                }
            }
            catch (Core.Pipeline.SyncException e)
            {
                foreach (var plan in group)
                {
                    result[plan.Stream] = "source not reachable: " + e.Message;
                }
            }
        }

        return result;
    }

    private static string N(long? value) => value?.ToString("N0", System.Globalization.CultureInfo.InvariantCulture) ?? "-";

    private static string FormatLag(double seconds) => Duration.FromSeconds(seconds) switch
    {
        var d when d < Duration.FromMinutes(1) => $"{seconds:0.#}s",
        var d when d < Duration.FromHours(1) => $"{d.TotalMinutes:0.#}m",
        var d when d < Duration.FromDays(1) => $"{d.TotalHours:0.#}h",
        var d => $"{d.TotalDays:0.#}d",
    };
}

/// <summary>JSON shapes of state for <c>--json</c>.</summary>
internal static class StateJson
{
    /// <summary>One stream's state; with several sources the entry names its <c>source</c> (single-source output is unchanged).</summary>
    public static object Table(TableState t, string? capture = null) => t.Source is null ? SingleSource(t, capture) : new
    {
        table = t.Table,
        source = t.Source,
        stream = t.Stream,
        last_run_id = t.LastRunId,
        last_run_status = t.LastRunStatus,
        last_run_at = t.LastRunAt is { } at ? InstantPattern.ExtendedIso.Format(at) : null,
        lag_seconds = t.LagSeconds,
        versions = t.StoredVersions,
        problem = t.Problem,
        checkpoint = t.Latest is null ? null : Checkpoint(t.Latest),
        capture,
    };

    private static object SingleSource(TableState t, string? capture) => new
    {
        table = t.Table,
        stream = t.Stream,
        last_run_id = t.LastRunId,
        last_run_status = t.LastRunStatus,
        last_run_at = t.LastRunAt is { } at ? InstantPattern.ExtendedIso.Format(at) : null,
        lag_seconds = t.LagSeconds,
        versions = t.StoredVersions,
        problem = t.Problem,
        checkpoint = t.Latest is null ? null : Checkpoint(t.Latest),
        capture,
    };

    public static object Checkpoint(Checkpoint c) => new
    {
        version = c.Version,
        position = c.Position.ToString(),
        method = c.Method,
        high_water_mark = c.HighWaterMark is { } h ? InstantPattern.ExtendedIso.Format(h) : null,
        watermark = c.Watermark is { } w ? InstantPattern.ExtendedIso.Format(w) : null,
        schema_fingerprint = c.SchemaFingerprint,
        records_processed = c.Totals.RecordsProcessed,
        records_inserted = c.Totals.Inserted,
        records_updated = c.Totals.Updated,
        records_deleted = c.Totals.Deleted,
        records_dead_lettered = c.Totals.DeadLettered,
        epoch = c.Epoch,
        run_id = c.RunId,
        created_at = InstantPattern.ExtendedIso.Format(c.CreatedAt),
        note = c.Note,
        state_version = c.StateVersion,
    };
}
