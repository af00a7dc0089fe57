using System.ComponentModel;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeltaSync.Cli.Output;
using DeltaSync.Core.Config;
using DeltaSync.Core.Conflicts;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using NodaTime;
using NodaTime.Text;
using Spectre.Console.Cli;

namespace DeltaSync.Cli.Commands;

/// <summary><c>conflicts list</c>: the review queue, oldest detection first.</summary>
public sealed class ConflictListCommand : AsyncCommand<ConfigSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, ConfigSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        await using var session = await StateSession.OpenAsync(settings, cancellationToken).ConfigureAwait(false);
        var reviews = await session.Store.ReadConflictReviewsAsync(null, int.MaxValue, cancellationToken).ConfigureAwait(false);
        if (settings.Json)
        {
            Terminal.WriteJson(reviews.Select(ConflictJson.Item));
            return ExitCodes.Completed;
        }

        if (reviews.Count == 0)
        {
            Terminal.Line($"no conflicts wait for review in {session.Store.Description}");
            return ExitCodes.Completed;
        }

        Terminal.Table(
            ["conflict id", "table", "record id", "type", "held fields", "detected at", "sources"],
            reviews.Select(r =>
            {
                var record = JsonNode.Parse(r.RecordJson)!;
                return new[]
                {
                    r.ConflictId,
                    r.Table,
                    r.RecordId,
                    record["conflict_type"]?.GetValue<string>() ?? "",
                    string.Join(", ", record["resolution"]?["held_fields"]?.AsArray().Select(f => f!.GetValue<string>()) ?? []),
                    InstantPattern.General.Format(r.DetectedAt),
                    string.Join(", ", record["sources"]?.AsArray().Select(s => s!["source"]!.GetValue<string>()) ?? []),
                };
            }));
        return ExitCodes.Completed;
    }
}

/// <summary><c>conflicts show ID</c> / <c>conflicts resolve ID</c>: the conflict's id.</summary>
public class ConflictIdSettings : ConfigSettings
{
    [CommandArgument(0, "<ID>")]
    [Description("The conflict's id (conflict_…), as 'conflicts list' and the report show it.")]
    public string Id { get; init; } = "";
}

/// <summary>One conflict in full: the spec's Conflict Resolution Report and its history (detections, resolutions, writes that joined the review).</summary>
public sealed class ConflictShowCommand : AsyncCommand<ConflictIdSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, ConflictIdSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        await using var session = await StateSession.OpenAsync(settings, cancellationToken).ConfigureAwait(false);
        var review = (await session.Store.ReadConflictReviewsAsync(settings.Id, 1, cancellationToken).ConfigureAwait(false)).SingleOrDefault();
        var history = await session.Store.ReadConflictLogAsync(settings.Id, int.MaxValue, cancellationToken).ConfigureAwait(false);
        var detected = history.FirstOrDefault(e => e.Kind == "detected");
        var recordJson = review?.RecordJson ?? detected?.Json
            ?? throw new DeadLetterNotFoundException($"no conflict '{settings.Id}' in {session.Store.Description}; 'deltasync conflicts list' shows the ones waiting for review");
        var record = JsonNode.Parse(recordJson)!.AsObject();
        var latest = history.LastOrDefault(e => e.Kind == "resolved");
        if (review is null && latest is not null && JsonNode.Parse(latest.Json)?["resolution"] is JsonObject resolution)
        {
            // Settled since detection: the report shows the latest resolution.
            record["resolution"] = resolution.DeepClone();
            record["status"] = "resolved";
        }

        if (settings.Json)
        {
            record["history"] = new JsonArray(history.Select(e => (JsonNode)new JsonObject
            {
                ["kind"] = e.Kind,
                ["logged_at"] = InstantPattern.ExtendedIso.Format(e.LoggedAt),
                ["stream"] = e.Stream,
                ["entry"] = JsonNode.Parse(e.Json),
            }).ToArray());
            Terminal.WriteJson(record);
            return ExitCodes.Completed;
        }

        Terminal.Line(record.ToJsonString(Terminal.Json));
        Terminal.Line("history:");
        foreach (var entry in history)
        {
            Terminal.Line($"  {InstantPattern.ExtendedIso.Format(entry.LoggedAt)} {Describe(entry)} ({entry.Stream})");
        }

        return ExitCodes.Completed;
    }

    /// <summary>
    /// A history line's event in words. The log files a decision that holds fields for review under the same kind as
    /// one that settles them ("resolved"); the line says which it was.
    /// </summary>
    private static string Describe(ConflictLogRecord entry)
    {
        if (entry.Kind == ConflictLogEntry.Kinds.HeldUpdate)
        {
            var update = JsonNode.Parse(entry.Json);
            return $"later write by {update?["source"]?.GetValue<string>() ?? "?"} queued behind the review ({update?["field"]?.GetValue<string>() ?? "?"})";
        }

        if (entry.Kind != ConflictLogEntry.Kinds.Resolved || JsonNode.Parse(entry.Json)?["resolution"] is not JsonObject resolution)
        {
            return entry.Kind;
        }

        var strategy = resolution["strategy"]?.GetValue<string>() ?? "?";
        if (resolution["held_fields"] is JsonArray { Count: > 0 } held)
        {
            return $"held for manual review ({string.Join(", ", held.Select(f => f?.GetValue<string>()))}; {strategy})";
        }

        return resolution["resolved_by"]?.GetValue<string>() is { } by ? $"resolved ({strategy}, by {by})" : $"resolved ({strategy})";
    }
}

/// <summary><c>conflicts resolve ID (--take SOURCE | --value JSON | --field NAME=SOURCE)…</c>.</summary>
public sealed class ConflictResolveSettings : ConflictIdSettings
{
    [CommandOption("--take <SOURCE>")]
    [Description("Every held field takes this source's latest candidate.")]
    public string? Take { get; init; }

    [CommandOption("--field <NAME=SOURCE>")]
    [Description("This held field takes this source's latest candidate (repeatable).")]
    public string[] Fields { get; init; } = [];

    [CommandOption("--value <JSON>")]
    [Description("Values for held fields, as a JSON object such as '{\"email\": \"a@b.c\"}' (repeatable).")]
    public string[] Values { get; init; } = [];

    [CommandOption("--by <NAME>")]
    [Description("Who decided, for the resolution history (default: the user name).")]
    public string? By { get; init; }
}

/// <summary>
/// Applies a reviewer's decision to the destination (its rows, ledger-side record base, one transaction), records it in
/// the resolution history and removes the conflict from the queue. Exit 0 when applied; 1 for an unknown id; 2 for a
/// missing or impossible decision.
/// </summary>
public sealed class ConflictResolveCommand : AsyncCommand<ConflictResolveSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, ConflictResolveSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var decision = Decision(settings);
        if (decision.IsEmpty)
        {
            throw new UsageException("conflicts resolve needs a decision: --take SOURCE, --field NAME=SOURCE or --value JSON");
        }

        await using var session = await StateSession.OpenAsync(settings, cancellationToken).ConfigureAwait(false);
        var config = session.Config;
        var connectors = CliHost.Connectors();
        await using var destination = await Open(connectors, config.Sync.Destination, "destination", c => c.OpenDestinationAsync(config.Sync.Destination, config, cancellationToken)).ConfigureAwait(false);
        var sources = new Dictionary<string, ISource>(StringComparer.Ordinal);
        ReviewResolved? resolved;
        try
        {
            var resolver = new ConflictReviewResolver(
                config,
                session.Store,
                destination,
                async (plan, ct) =>
                {
                    if (!sources.TryGetValue(plan.SourceName, out var source))
                    {
                        var endpoint = config.Sync.SourceNamed(plan.SourceName);
                        sources[plan.SourceName] = source = await Open(connectors, endpoint, $"source '{endpoint.Name}'", c => c.OpenSourceAsync(endpoint, config, ct)).ConfigureAwait(false);
                    }

                    return await source.DescribeTableAsync(plan.ToTableOptions(), ct).ConfigureAwait(false);
                },
                SystemClock.Instance);
            try
            {
                resolved = await resolver.ResolveAsync(settings.Id, decision, settings.By ?? Environment.UserName, cancellationToken).ConfigureAwait(false);
            }
            catch (ReviewDecisionException e)
            {
                throw new UsageException(e.Message);
            }
        }
        finally
        {
            foreach (var source in sources.Values)
            {
                await source.DisposeAsync().ConfigureAwait(false);
            }
        }

        if (resolved is null)
        {
            throw new DeadLetterNotFoundException($"no conflict '{settings.Id}' waits for review in {session.Store.Description}; 'deltasync conflicts list' shows the ones that do");
        }

        var resolution = JsonNode.Parse(ConflictSession.ResolutionJson(resolved.Resolution))!.AsObject();
        if (settings.Json)
        {
            resolution["record_id"] = resolved.Review.RecordId;
            resolution["table"] = resolved.Review.Table;
            resolution["inserted"] = resolved.Written.Inserted;
            resolution["updated"] = resolved.Written.Updated;
            resolution["deleted"] = resolved.Written.Deleted;
            Terminal.WriteJson(resolution);
        }
        else
        {
            var values = resolution["resolution"]?["resolved_values"]?.ToJsonString() ?? "{}";
            Terminal.Line($"resolved {resolved.Review.ConflictId} ({resolved.Review.Table} record {resolved.Review.RecordId}): {values}");
        }

        return ExitCodes.Completed;
    }

    private static ReviewDecision Decision(ConflictResolveSettings settings)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in settings.Fields)
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0 || equals == pair.Length - 1)
            {
                throw new UsageException($"--field expects NAME=SOURCE, got '{pair}'");
            }

            fields[pair[..equals].Trim()] = pair[(equals + 1)..].Trim();
        }

        var values = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var json in settings.Values)
        {
            JsonNode? node;
            try
            {
                node = JsonNode.Parse(json);
            }
            catch (JsonException e)
            {
                throw new UsageException($"--value expects a JSON object such as '{{\"email\": \"a@b.c\"}}': {e.Message}");
            }

            if (node is not JsonObject values_)
            {
                throw new UsageException("--value expects a JSON object such as '{\"email\": \"a@b.c\"}'");
            }

            foreach (var (name, value) in values_)
            {
                values[name] = Plain(value);
            }
        }

        return new ReviewDecision(settings.Take, fields, values);
    }

    private static object? Plain(JsonNode? node) => node switch
    {
        null => null,
        JsonValue v when v.TryGetValue<long>(out var l) => l,
        JsonValue v when v.TryGetValue<double>(out var d) => d,
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => node.ToJsonString(),
    };

    private static async Task<T> Open<T>(ConnectorRegistry connectors, EndpointOptions endpoint, string role, Func<IConnector, Task<T>> open)
    {
        var connector = connectors.Find(endpoint.Connection)
            ?? throw new SyncException(ErrorClass.Fatal, $"no connector handles the {role} connection '{ConnectionText.Redact(endpoint.Connection)}'");
        return await open(connector).ConfigureAwait(false);
    }
}

/// <summary>The JSON shapes of the conflicts commands (snake_case, like the report).</summary>
internal static class ConflictJson
{
    public static JsonObject Item(ConflictReview review)
    {
        var record = JsonNode.Parse(review.RecordJson)!.AsObject();
        return new JsonObject
        {
            ["conflict_id"] = review.ConflictId,
            ["record_id"] = review.RecordId,
            ["table"] = review.Table,
            ["stream"] = review.Stream,
            ["conflict_type"] = record["conflict_type"]?.DeepClone(),
            ["conflicting_fields"] = record["conflicting_fields"]?.DeepClone(),
            ["held_fields"] = record["resolution"]?["held_fields"]?.DeepClone(),
            ["detected_at"] = InstantPattern.ExtendedIso.Format(review.DetectedAt),
            ["status"] = "pending_review",
            ["sources"] = record["sources"]?.DeepClone(),
        };
    }
}
