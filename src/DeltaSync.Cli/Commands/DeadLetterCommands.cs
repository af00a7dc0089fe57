using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeltaSync.Cli.Output;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using NodaTime;
using NodaTime.Text;
using Spectre.Console.Cli;

namespace DeltaSync.Cli.Commands;

/// <summary><c>dlq list [--table T]…</c>: the queued entries, oldest first.</summary>
public sealed class DeadLetterListCommand : AsyncCommand<TableSettings>
{
    private const int ReasonWidth = 60;

    public override async Task<int> ExecuteAsync(CommandContext context, TableSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        await using var session = await StateSession.OpenAsync(settings, cancellationToken).ConfigureAwait(false);
        var entries = await new DeadLetterQueue(session.Config, session.Store).ListAsync(settings.Tables, cancellationToken).ConfigureAwait(false);
        if (settings.Json)
        {
            Terminal.WriteJson(entries.Select(DeadLetterJson.Entry));
            return ExitCodes.Completed;
        }

        if (entries.Count == 0)
        {
            Terminal.Line($"the dead-letter queue of {session.Config.Name} is empty ({session.Store.Description})");
            return ExitCodes.Completed;
        }

        // A terminal gets one line per entry; redirected output keeps every reason whole for scripts and logs.
        Terminal.Table(
            ["id", "table", "record id", "error class", "attempts", "failed at", "reason"],
            entries.Select(d => new[]
            {
                d.Id,
                d.Table,
                d.RecordId,
                d.ErrorClass.ToString().ToLowerInvariant(),
                d.Attempts.ToString(CultureInfo.InvariantCulture),
                InstantPattern.General.Format(d.FailedAt),
                Terminal.IsInteractive ? Clip(OneLine(d.Reason), ReasonWidth) : OneLine(d.Reason),
            }));
        return ExitCodes.Completed;
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");

    private static string Clip(string text, int width) => text.Length <= width ? text : text[..(width - 1)] + "…";
}

/// <summary><c>dlq show ID</c>.</summary>
public sealed class DeadLetterShowSettings : ConfigSettings
{
    [CommandArgument(0, "<ID>")]
    [Description("The entry's id (dl_…), as 'dlq list' shows it.")]
    public string Id { get; init; } = "";
}

/// <summary>One entry in full, the raw record pretty-printed.</summary>
public sealed class DeadLetterShowCommand : AsyncCommand<DeadLetterShowSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, DeadLetterShowSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        await using var session = await StateSession.OpenAsync(settings, cancellationToken).ConfigureAwait(false);
        var entry = await new DeadLetterQueue(session.Config, session.Store).FindAsync(settings.Id, cancellationToken).ConfigureAwait(false)
            ?? throw new DeadLetterNotFoundException($"no dead-letter entry '{settings.Id}' in {session.Store.Description}; 'deltasync dlq list' shows the queued ids");
        if (settings.Json)
        {
            Terminal.WriteJson(DeadLetterJson.Entry(entry));
            return ExitCodes.Completed;
        }

        Terminal.Line($"id:          {entry.Id}");
        Terminal.Line($"table:       {entry.Table}");
        Terminal.Line($"stream:      {entry.Stream}");
        Terminal.Line($"record id:   {entry.RecordId}");
        Terminal.Line($"error class: {entry.ErrorClass.ToString().ToLowerInvariant()}");
        Terminal.Line($"attempts:    {entry.Attempts.ToString(CultureInfo.InvariantCulture)}");
        Terminal.Line($"failed at:   {InstantPattern.ExtendedIso.Format(entry.FailedAt)}");
        Terminal.Line($"position:    {entry.Position}");
        Terminal.Line($"reason:      {entry.Reason}");
        Terminal.Line("raw record:");
        Terminal.Line(DeadLetterJson.RawRecord(entry) is JsonNode raw ? raw.ToJsonString(Terminal.Json) : entry.RawRecord);
        return ExitCodes.Completed;
    }
}

/// <summary><c>dlq purge (--id ID… | --table T… | --all)</c>.</summary>
public sealed class DeadLetterPurgeSettings : TableSettings
{
    [CommandOption("--id <ID>")]
    [Description("Only this entry (repeatable).")]
    public string[] Ids { get; init; } = [];

    [CommandOption("--all")]
    [Description("Every entry of this sync.")]
    public bool All { get; init; }
}

/// <summary>Removes entries; refuses without a selector, so a bare 'purge' never empties the queue by accident.</summary>
public sealed class DeadLetterPurgeCommand : AsyncCommand<DeadLetterPurgeSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, DeadLetterPurgeSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var narrowed = settings.Ids.Length > 0 || settings.Tables.Length > 0;
        if (!narrowed && !settings.All)
        {
            throw new UsageException("dlq purge needs a selector: --id ID…, --table T… or --all");
        }

        if (narrowed && settings.All)
        {
            throw new UsageException("--all cannot be combined with --id or --table");
        }

        await using var session = await StateSession.OpenAsync(settings, cancellationToken).ConfigureAwait(false);
        var queue = new DeadLetterQueue(session.Config, session.Store);
        var selected = await queue.SelectAsync(settings.Ids, settings.Tables, cancellationToken).ConfigureAwait(false);
        var removed = await queue.PurgeAsync(selected, cancellationToken).ConfigureAwait(false);
        if (settings.Json)
        {
            Terminal.WriteJson(new { removed, ids = selected.Select(d => d.Id) });
        }
        else
        {
            Terminal.Line($"removed {removed} dead-letter entr{(removed == 1 ? "y" : "ies")} from {session.Store.Description}");
        }

        return ExitCodes.Completed;
    }
}

/// <summary><c>dlq replay [--id ID…] [--table T…]</c>.</summary>
public sealed class DeadLetterReplaySettings : TableSettings
{
    [CommandOption("--id <ID>")]
    [Description("Only this entry (repeatable). Every entry of the selected tables when omitted.")]
    public string[] Ids { get; init; } = [];
}

/// <summary>
/// Re-applies entries after a fix (see <see cref="DeadLetterReplay"/>): exit 0 when every entry applied, 3 when some
/// still fail, 1 when a table could not be replayed.
/// </summary>
public sealed class DeadLetterReplayCommand : AsyncCommand<DeadLetterReplaySettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, DeadLetterReplaySettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        await using var session = await StateSession.OpenAsync(settings, cancellationToken).ConfigureAwait(false);
        var config = session.Config;
        var selected = await new DeadLetterQueue(config, session.Store).SelectAsync(settings.Ids, settings.Tables, cancellationToken).ConfigureAwait(false);
        if (selected.Count == 0)
        {
            if (settings.Json)
            {
                Terminal.WriteJson(new { tables = Array.Empty<object>() });
            }
            else
            {
                Terminal.Line("nothing to replay: no dead-letter entries selected");
            }

            return ExitCodes.Completed;
        }

        var connectors = CliHost.Connectors();
        await using var destination = await Open(connectors, config.Sync.Destination, "destination", c => c.OpenDestinationAsync(config.Sync.Destination, config, cancellationToken)).ConfigureAwait(false);
        // Each entry is read again from the source its stream belongs to (sync.sources: one per source).
        var plans = TablePlan.FromConfig(config);
        var results = new List<TableReplayResult>();
        var locks = new DestinationTableLocks();
        foreach (var group in selected.GroupBy(d => plans.FirstOrDefault(p => p.Stream == d.Stream)?.SourceName ?? config.Sync.Source.Name, StringComparer.Ordinal))
        {
            var endpoint = config.Sync.SourceNamed(group.Key);
            await using var source = await Open(connectors, endpoint, "source", c => c.OpenSourceAsync(endpoint, config, cancellationToken)).ConfigureAwait(false);
            results.AddRange(await new DeadLetterReplay(config, source, destination, session.Store, SystemClock.Instance, locks: locks)
                .ReplayAsync(group.ToList(), cancellationToken).ConfigureAwait(false));
        }
        if (settings.Json)
        {
            Terminal.WriteJson(new { tables = results.Select(DeadLetterJson.Replay) });
        }
        else
        {
            foreach (var table in results)
            {
                Print(table);
            }
        }

        return results.Any(r => r.Error is not null) ? ExitCodes.Failed
            : results.Any(r => r.StillFailing.Count > 0) ? ExitCodes.Partial
            : ExitCodes.Completed;
    }

    private static void Print(TableReplayResult table)
    {
        if (table.Error is not null)
        {
            Terminal.Line($"{table.Table}: replay failed, its {table.Replayed} entr{(table.Replayed == 1 ? "y stays" : "ies stay")} queued: {table.Error}");
            return;
        }

        var w = table.Written;
        Terminal.Line(string.Create(
            CultureInfo.InvariantCulture,
            $"{table.Table}: replayed {table.Replayed}, applied {table.Applied}, still failing {table.StillFailing.Count} (destination: {w.Inserted} inserted, {w.Updated} updated, {w.Deleted} deleted){(table.ConflictsDetected > 0 ? $"; {table.ConflictsDetected} conflict(s) detected, see deltasync conflicts list" : "")}"));
        foreach (var entry in table.StillFailing)
        {
            Terminal.Line(string.Create(CultureInfo.InvariantCulture, $"  {entry.Id} record {entry.RecordId} (attempts {entry.Attempts}): {entry.Reason}"));
        }
    }

    private static async Task<T> Open<T>(ConnectorRegistry connectors, Core.Config.EndpointOptions endpoint, string role, Func<IConnector, Task<T>> open)
    {
        var connector = connectors.Find(endpoint.Connection)
            ?? throw new SyncException(ErrorClass.Fatal, $"no connector handles the {role} connection '{ConnectionText.Redact(endpoint.Connection)}'");
        return await open(connector).ConfigureAwait(false);
    }
}

/// <summary>The JSON shapes of the dlq commands (snake_case, like the report).</summary>
internal static class DeadLetterJson
{
    public static object Entry(DeadLetter d) => new
    {
        id = d.Id,
        table = d.Table,
        stream = d.Stream,
        record_id = d.RecordId,
        error_class = d.ErrorClass.ToString().ToLowerInvariant(),
        attempts = d.Attempts,
        failed_at = InstantPattern.ExtendedIso.Format(d.FailedAt),
        reason = d.Reason,
        position = d.Position.ToString(),
        raw_record = RawRecord(d) ?? JsonValue.Create(d.RawRecord),
    };

    public static object Replay(TableReplayResult r) => new
    {
        table = r.Table,
        replayed = r.Replayed,
        applied = r.Applied,
        still_failing = r.StillFailing.Count,
        inserted = r.Written.Inserted,
        updated = r.Written.Updated,
        deleted = r.Written.Deleted,
        conflicts_detected = r.ConflictsDetected,
        error = r.Error,
        failures = r.StillFailing.Select(d => new { id = d.Id, record_id = d.RecordId, attempts = d.Attempts, reason = d.Reason }),
    };

    /// <summary>The raw record as JSON; null when it is not JSON (shown as text instead).</summary>
    public static JsonNode? RawRecord(DeadLetter d)
    {
        try
        {
            return JsonNode.Parse(d.RawRecord);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
