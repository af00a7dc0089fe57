using System.ComponentModel;
using DeltaSync.Cli.Output;
using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.State;
using NodaTime;
using NodaTime.Text;
using Spectre.Console.Cli;

namespace DeltaSync.Cli.Commands;

/// <summary>Opens the configured state store for a state command.</summary>
internal sealed class StateSession : IAsyncDisposable
{
    private StateSession(SyncConfig config, IStateStore store)
    {
        Config = config;
        Store = store;
        Admin = new StateAdmin(config, store, SystemClock.Instance);
    }

    public SyncConfig Config { get; }

    public IStateStore Store { get; }

    public StateAdmin Admin { get; }

    public static async Task<StateSession> OpenAsync(ConfigSettings settings, CancellationToken cancellationToken)
    {
        var config = CliHost.LoadConfig(settings.Config);
        return new StateSession(config, await StateStores.OpenAsync(config, CliHost.Connectors(), cancellationToken).ConfigureAwait(false));
    }

    public ValueTask DisposeAsync() => Store.DisposeAsync();
}

/// <summary><c>state show</c>: the newest checkpoint of each table.</summary>
public sealed class StateShowCommand : AsyncCommand<TableSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, TableSettings settings, CancellationToken cancellationToken)
    {
        await using var session = await StateSession.OpenAsync(settings, cancellationToken).ConfigureAwait(false);
        var tables = await session.Admin.ShowAsync(settings.Tables, cancellationToken).ConfigureAwait(false);
        if (settings.Json)
        {
            Terminal.WriteJson(new { sync = session.Config.Name, state = session.Store.Description, tables = tables.Select(t => StateJson.Table(t)) });
            return ExitCodes.Completed;
        }

        Terminal.Table(
            ["table", "version", "method", "position", "high-water mark", "written", "note"],
            tables.Select(t => new[]
            {
                // With several sources a table has one stream per source.
                TablePlan.Label(t.Table, t.Source),
                t.Latest is null ? (t.Problem is null ? "none" : "corrupt") : "v" + t.Latest.Version,
                t.Latest?.Method ?? "-",
                t.Latest?.Position.ToString() ?? t.Problem ?? "-",
                t.Latest?.HighWaterMark is { } h ? InstantPattern.ExtendedIso.Format(h) : "-",
                t.Latest is null ? "-" : InstantPattern.General.Format(t.Latest.CreatedAt),
                t.Latest?.Note ?? "",
            }));
        return ExitCodes.Completed;
    }
}

/// <summary>Settings naming exactly one table.</summary>
public class OneTableSettings : ConfigSettings
{
    [CommandOption("-t|--table <TABLE>")]
    [Description("The table.")]
    public string? Table { get; init; }

    [CommandOption("--source <SOURCE>")]
    [Description("With several sources (sync.sources): the source whose stream of the table is meant.")]
    public string? Source { get; init; }

    public string RequireTable() => Table ?? throw new UsageException("--table TABLE is required");
}

/// <summary><c>state history --table T</c>: every version, newest first.</summary>
public sealed class StateHistoryCommand : AsyncCommand<OneTableSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, OneTableSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var table = settings.RequireTable();
        await using var session = await StateSession.OpenAsync(settings, cancellationToken).ConfigureAwait(false);
        var history = await session.Admin.HistoryAsync(table, settings.Source, cancellationToken).ConfigureAwait(false);
        if (settings.Json)
        {
            Terminal.WriteJson(history.Select(h => new
            {
                version = h.Stored.Version,
                saved_at = InstantPattern.ExtendedIso.Format(h.Stored.SavedAt),
                valid = h.Parsed is not null,
                problem = h.Problem,
                checkpoint = h.Parsed is null ? null : StateJson.Checkpoint(h.Parsed),
            }));
            return ExitCodes.Completed;
        }

        Terminal.Table(
            ["version", "saved", "valid", "position", "records", "run", "note"],
            history.Select(h => new[]
            {
                "v" + h.Stored.Version,
                InstantPattern.General.Format(h.Stored.SavedAt),
                h.Parsed is null ? "NO: " + h.Problem : "yes",
                h.Parsed?.Position.ToString() ?? "-",
                h.Parsed?.Totals.RecordsProcessed.ToString("N0", System.Globalization.CultureInfo.InvariantCulture) ?? "-",
                h.Parsed?.RunId ?? "-",
                h.Parsed?.Note ?? "",
            }));
        return ExitCodes.Completed;
    }
}

/// <summary><c>state rollback --table T --to VERSION</c>.</summary>
public sealed class StateRollbackSettings : OneTableSettings
{
    [CommandOption("--to <VERSION>")]
    [Description("The checkpoint version to make current again.")]
    public long? To { get; init; }
}

/// <summary>Appends a copy of an older version as the newest: the next run resumes from there (history stays append-only).</summary>
public sealed class StateRollbackCommand : AsyncCommand<StateRollbackSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, StateRollbackSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var table = settings.RequireTable();
        var to = settings.To ?? throw new UsageException("--to VERSION is required");
        await using var session = await StateSession.OpenAsync(settings, cancellationToken).ConfigureAwait(false);
        var restored = await session.Admin.RollbackAsync(table, settings.Source, to, cancellationToken).ConfigureAwait(false);
        if (settings.Json)
        {
            Terminal.WriteJson(new { table, rolled_back_to = to, new_version = restored.Version, checkpoint = StateJson.Checkpoint(restored) });
        }
        else
        {
            Terminal.Line($"{TablePlan.Label(table, settings.Source)}: version {to} restored as version {restored.Version} (position {restored.Position}); the next run resumes there");
        }

        return ExitCodes.Completed;
    }
}

/// <summary><c>state reset [--table T]…</c>.</summary>
public sealed class StateResetCommand : AsyncCommand<TableSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, TableSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        await using var session = await StateSession.OpenAsync(settings, cancellationToken).ConfigureAwait(false);
        var connectors = CliHost.Connectors();
        var config = session.Config;
        var destinationConnector = connectors.Find(config.Sync.Destination.Connection);
        // Every source: each table's triggers, slot and publication are removed from the source its stream reads.
        var sources = new Dictionary<string, ISource>(StringComparer.Ordinal);
        IDestination? destination = null;
        try
        {
            foreach (var endpoint in config.Sync.Sources)
            {
                if (connectors.Find(endpoint.Connection) is { } sourceConnector)
                {
                    sources[endpoint.Name] = await sourceConnector.OpenSourceAsync(endpoint, config, cancellationToken).ConfigureAwait(false);
                }
            }

            destination = destinationConnector is null ? null : await destinationConnector.OpenDestinationAsync(config.Sync.Destination, config, cancellationToken).ConfigureAwait(false);
            var reset = await session.Admin.ResetAsync(settings.Tables, plan => sources.GetValueOrDefault(plan.SourceName), destination, cancellationToken).ConfigureAwait(false);
            if (settings.Json)
            {
                Terminal.WriteJson(new { reset });
            }
            else
            {
                Terminal.Line($"reset {string.Join(", ", reset)}: checkpoints, ledger and what DeltaSync installed at the source (triggers, replication slot and publication) removed; the next run starts with a snapshot");
            }
        }
        finally
        {
            foreach (var source in sources.Values)
            {
                await source.DisposeAsync().ConfigureAwait(false);
            }

            if (destination is not null)
            {
                await destination.DisposeAsync().ConfigureAwait(false);
            }
        }

        return ExitCodes.Completed;
    }
}

/// <summary><c>state validate</c>: exit 0 when every version is valid, 1 otherwise.</summary>
public sealed class StateValidateCommand : AsyncCommand<TableSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, TableSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        await using var session = await StateSession.OpenAsync(settings, cancellationToken).ConfigureAwait(false);
        var results = await session.Admin.ValidateAsync(settings.Tables, cancellationToken).ConfigureAwait(false);
        if (settings.Json)
        {
            Terminal.WriteJson(new { valid = results.All(r => r.IsValid), streams = results.Select(r => new { stream = r.Stream, versions = r.Versions, invalid = r.Invalid, problems = r.Problems }) });
        }
        else
        {
            foreach (var r in results)
            {
                Terminal.Line(r.IsValid ? $"{r.Stream}: {r.Versions} version(s), all valid" : $"{r.Stream}: {r.Problems.Count} problem(s)");
                foreach (var problem in r.Problems)
                {
                    Terminal.Line("  " + problem);
                }
            }
        }

        return results.All(r => r.IsValid) ? ExitCodes.Completed : ExitCodes.Failed;
    }
}

/// <summary>Settings with a file for export/import.</summary>
public sealed class StateFileSettings : ConfigSettings
{
    [CommandOption("-f|--file <FILE>")]
    [Description("The export file (export writes to standard output when omitted).")]
    public string? File { get; init; }
}

/// <summary><c>state export [--file F]</c>.</summary>
public sealed class StateExportCommand : AsyncCommand<StateFileSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, StateFileSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        await using var session = await StateSession.OpenAsync(settings, cancellationToken).ConfigureAwait(false);
        var json = await session.Admin.ExportAsync(cancellationToken).ConfigureAwait(false);
        if (settings.File is null)
        {
            Console.Out.WriteLine(json);
        }
        else
        {
            var temp = settings.File + ".tmp";
            await File.WriteAllTextAsync(temp, json, cancellationToken).ConfigureAwait(false);
            File.Move(temp, settings.File, overwrite: true);
            Console.Error.WriteLine($"state exported to {settings.File}");
        }

        return ExitCodes.Completed;
    }
}

/// <summary>Settings of <c>state import</c>.</summary>
public sealed class StateImportSettings : ConfigSettings
{
    [CommandOption("-f|--file <FILE>")]
    [Description("The export file (from state export or a state.backup).")]
    public string? File { get; init; }

    [CommandOption("--replace")]
    [Description("Remove the streams in the file (checkpoint history and dead letters) first, then import them.")]
    public bool Replace { get; init; }
}

/// <summary>
/// <c>state import --file F [--replace]</c>: merges an export into the store (identical versions skipped, a differing
/// version stops the import with nothing written, exit 1), or with <c>--replace</c> restores the file's streams as they were.
/// </summary>
public sealed class StateImportCommand : AsyncCommand<StateImportSettings>
{
    private const int ConflictsShown = 20;

    public override async Task<int> ExecuteAsync(CommandContext context, StateImportSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var file = settings.File ?? throw new UsageException("--file FILE is required");
        var json = await System.IO.File.ReadAllTextAsync(file, cancellationToken).ConfigureAwait(false);
        await using var session = await StateSession.OpenAsync(settings, cancellationToken).ConfigureAwait(false);
        StateImportResult result;
        try
        {
            result = await session.Admin.ImportAsync(json, settings.Replace, cancellationToken).ConfigureAwait(false);
        }
        catch (StateImportConflictException conflict)
        {
            Console.Error.WriteLine("error: " + conflict.Message);
            foreach (var line in conflict.Conflicts.Take(ConflictsShown))
            {
                Console.Error.WriteLine("  " + line);
            }

            if (conflict.Conflicts.Count > ConflictsShown)
            {
                Console.Error.WriteLine($"  … and {conflict.Conflicts.Count - ConflictsShown} more");
            }

            return ExitCodes.Failed;
        }

        if (settings.Json)
        {
            Terminal.WriteJson(new
            {
                imported_versions = result.Versions,
                skipped_versions = result.VersionsSkipped,
                imported_dead_letters = result.DeadLetters,
                skipped_dead_letters = result.DeadLettersSkipped,
                replaced_streams = result.StreamsReplaced,
                streams_ahead_of_file = result.StreamsAhead,
                imported_conflict_log_entries = result.ConflictLogEntries,
                imported_conflict_reviews = result.ConflictReviews,
                settled_conflict_reviews = result.ConflictReviewsSettled,
            });
        }
        else
        {
            Terminal.Line(
                $"imported {result.Versions} checkpoint version(s) and {result.DeadLetters} dead letter(s) into {session.Store.Description}" +
                $" ({result.VersionsSkipped} identical version(s) and {result.DeadLettersSkipped} queued dead letter(s) already there)" +
                (result.StreamsReplaced.Count > 0 ? $"; replaced {string.Join(", ", result.StreamsReplaced)}" : ""));
            if (result.ConflictLogEntries > 0 || result.ConflictReviews > 0 || result.ConflictReviewsSettled > 0)
            {
                Terminal.Line(
                    $"imported {result.ConflictLogEntries} conflict log entr(ies) and {result.ConflictReviews} conflict(s) waiting for review" +
                    (result.ConflictReviewsSettled > 0 ? $" ({result.ConflictReviewsSettled} already resolved by a reviewer, not queued again)" : ""));
            }
        }

        foreach (var stream in result.StreamsAhead)
        {
            Console.Error.WriteLine($"note: '{stream}' has newer checkpoint versions in the store than in the file; they stay current. Use --replace to restore the file's state.");
        }

        return ExitCodes.Completed;
    }
}
