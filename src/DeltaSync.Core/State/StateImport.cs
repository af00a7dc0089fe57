using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeltaSync.Core.Model;
using NodaTime.Text;

namespace DeltaSync.Core.State;

/// <summary>What a <c>state import</c> did.</summary>
/// <param name="Versions">Checkpoint versions appended.</param>
/// <param name="VersionsSkipped">Versions the store already had with the same payload.</param>
/// <param name="DeadLetters">Dead letters queued.</param>
/// <param name="DeadLettersSkipped">Dead letters already queued (left as they were, attempts not added to).</param>
/// <param name="StreamsReplaced">Streams whose history and dead letters were removed first (<c>--replace</c>).</param>
/// <param name="StreamsAhead">Streams where the store has versions newer than the file's newest: kept, and still current.</param>
public sealed record StateImportResult(
    int Versions,
    int VersionsSkipped,
    int DeadLetters,
    int DeadLettersSkipped,
    IReadOnlyList<string> StreamsReplaced,
    IReadOnlyList<string> StreamsAhead)
{
    /// <summary>Conflict log entries appended (entries the store already had are skipped by their id).</summary>
    public int ConflictLogEntries { get; init; }

    /// <summary>Conflicts put (back) in the review queue.</summary>
    public int ConflictReviews { get; init; }

    /// <summary>Reviews in the file that the store's conflict log shows a reviewer has since resolved: not queued again.</summary>
    public int ConflictReviewsSettled { get; init; }
}

/// <summary>An import found checkpoint versions that differ from the ones in the store; nothing was written.</summary>
public sealed class StateImportConflictException : Exception
{
    public StateImportConflictException()
    {
    }

    public StateImportConflictException(string message)
        : base(message)
    {
    }

    public StateImportConflictException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public StateImportConflictException(string message, IReadOnlyList<string> conflicts)
        : base(message)
    {
        Conflicts = conflicts;
    }

    /// <summary>One line per differing version: stream and version.</summary>
    public IReadOnlyList<string> Conflicts { get; } = [];
}

/// <summary>
/// Restores a <c>state export</c> document into a store that may already hold state. Without <c>replace</c> it merges:
/// versions the store already has with the same payload are skipped, missing ones appended, and a version whose
/// payload differs is a conflict that stops the import before anything is written. With <c>replace</c> every stream
/// in the file (its checkpoint history and its queued dead letters) is removed first, then the file's state written.
/// </summary>
/// <remarks>
/// The whole document is read and checked, and the store compared with it, before the first write, so a malformed
/// file or a conflict leaves the store untouched. A write failing half-way (the store went away) can leave part of the
/// file imported; importing the same file again completes it, as identical versions are skipped. Leases are not part
/// of an export and are left as they are.
/// </remarks>
internal sealed class StateImport
{
    private const string Format = "deltasync-state-export";

    /// <summary>
    /// The export document's version: 1 (no <c>export_version</c>) held checkpoints and dead letters; 2 adds
    /// <c>conflict_log</c> and <c>conflict_reviews</c>.
    /// </summary>
    public const int CurrentExportVersion = 2;

    private readonly IStateStore _store;

    public StateImport(IStateStore store)
    {
        _store = store;
    }

    public async Task<StateImportResult> RunAsync(string json, bool replace, CancellationToken cancellationToken)
    {
        var (streams, letters, log, reviews) = Parse(json);
        var replaced = new List<string>();
        var ahead = new List<string>();
        var toAppend = new List<StoredCheckpoint>();
        var skipped = 0;
        if (replace)
        {
            toAppend.AddRange(streams.SelectMany(s => s.Versions));
        }
        else
        {
            var conflicts = new List<string>();
            foreach (var (stream, versions) in streams)
            {
                var existing = (await _store.ReadHistoryAsync(stream, int.MaxValue, cancellationToken).ConfigureAwait(false)).ToDictionary(h => h.Version);
                foreach (var version in versions)
                {
                    if (!existing.TryGetValue(version.Version, out var stored))
                    {
                        toAppend.Add(version);
                    }
                    else if (string.Equals(stored.Payload, version.Payload, StringComparison.Ordinal))
                    {
                        skipped++;
                    }
                    else
                    {
                        conflicts.Add($"{stream} version {version.Version}: the store holds a different checkpoint under this version");
                    }
                }

                if (versions.Count > 0 && existing.Count > 0 && existing.Keys.Max() > versions[^1].Version)
                {
                    ahead.Add(stream);
                }
            }

            if (conflicts.Count > 0)
            {
                throw new StateImportConflictException(
                    $"{conflicts.Count} checkpoint version(s) in the file differ from the ones in {_store.Description}; nothing was imported. " +
                    "Import with --replace to replace the file's streams with the file's history, or reset those tables first.",
                    conflicts);
            }
        }

        if (replace)
        {
            var fileStreams = streams.Select(s => s.Stream).Concat(letters.Select(l => l.Stream)).Concat(reviews.Select(r => r.Stream)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            var inFile = fileStreams.ToHashSet(StringComparer.Ordinal);
            foreach (var stream in fileStreams)
            {
                await _store.DeleteStreamAsync(stream, cancellationToken).ConfigureAwait(false);
                var queued = await _store.ReadDeadLettersAsync(stream, int.MaxValue, cancellationToken).ConfigureAwait(false);
                await _store.RemoveDeadLettersAsync(queued, cancellationToken).ConfigureAwait(false);
                replaced.Add(stream);
            }

            // The review queue of the replaced streams becomes the file's. The conflict log is append-only: never removed.
            foreach (var review in await _store.ReadConflictReviewsAsync(null, int.MaxValue, cancellationToken).ConfigureAwait(false))
            {
                if (inFile.Contains(review.Stream))
                {
                    await _store.RemoveConflictReviewAsync(review.ConflictId, cancellationToken).ConfigureAwait(false);
                }
            }
        }

        foreach (var version in toAppend)
        {
            await _store.AppendAsync(version, cancellationToken).ConfigureAwait(false);
        }

        // Queued entries are kept as they are: adding them again would count their attempts twice.
        var present = (await _store.ReadDeadLettersAsync(null, int.MaxValue, cancellationToken).ConfigureAwait(false)).Select(l => l.Id).ToHashSet(StringComparer.Ordinal);
        var newLetters = letters.Where(l => present.Add(l.Id)).ToList();
        if (newLetters.Count > 0)
        {
            await _store.AddDeadLettersAsync(newLetters, cancellationToken).ConfigureAwait(false);
        }

        var (logged, queuedReviews, settled) = await ImportConflictsAsync(log, reviews, cancellationToken).ConfigureAwait(false);
        return new StateImportResult(toAppend.Count, skipped, newLetters.Count, letters.Count - newLetters.Count, replaced, ahead)
        {
            ConflictLogEntries = logged,
            ConflictReviews = queuedReviews,
            ConflictReviewsSettled = settled,
        };
    }

    /// <summary>
    /// The conflict log is merged (the store skips entries it already has, by id, so importing twice changes nothing);
    /// a review is queued unless the log — the store's and the file's together — holds a reviewer's resolution of it:
    /// a conflict settled after the export was taken must not wait for review again (its hold is gone from the record),
    /// and a review the store still queues leaves the queue when the file's log shows it settled.
    /// </summary>
    private async Task<(int Logged, int Reviews, int Settled)> ImportConflictsAsync(List<ConflictLogRecord> log, List<ConflictReview> reviews, CancellationToken cancellationToken)
    {
        if (log.Count == 0 && reviews.Count == 0)
        {
            return (0, 0, 0);
        }

        var existing = await _store.ReadConflictLogAsync(null, int.MaxValue, cancellationToken).ConfigureAwait(false);
        var known = existing.Select(e => e.EntryId).ToHashSet(StringComparer.Ordinal);
        var added = log.Where(e => known.Add(e.EntryId)).ToList();
        if (added.Count > 0)
        {
            await _store.AppendConflictLogAsync(added, cancellationToken).ConfigureAwait(false);
        }

        var settledIds = existing.Concat(added)
            .Where(e => e.Kind == Conflicts.ConflictLogEntry.Kinds.Resolved && e.EntryId.StartsWith(e.ConflictId + ":resolved:review:", StringComparison.Ordinal))
            .Select(e => e.ConflictId)
            .ToHashSet(StringComparer.Ordinal);
        var queue = reviews.Where(r => !settledIds.Contains(r.ConflictId)).ToList();
        if (queue.Count > 0)
        {
            await _store.AddConflictReviewsAsync(queue, cancellationToken).ConfigureAwait(false);
        }

        // The file may also settle reviews this store still queues (resolved where the export was taken): the log decides.
        foreach (var review in await _store.ReadConflictReviewsAsync(null, int.MaxValue, cancellationToken).ConfigureAwait(false))
        {
            if (settledIds.Contains(review.ConflictId))
            {
                await _store.RemoveConflictReviewAsync(review.ConflictId, cancellationToken).ConfigureAwait(false);
            }
        }

        return (added.Count, queue.Count, reviews.Count - queue.Count);
    }

    /// <summary>Reads the whole document, or says where it is malformed; versions come back oldest first.</summary>
    private static (List<(string Stream, List<StoredCheckpoint> Versions)> Streams, List<DeadLetter> Letters, List<ConflictLogRecord> Log, List<ConflictReview> Reviews) Parse(string json)
    {
        JsonObject? document;
        try
        {
            document = JsonNode.Parse(json) as JsonObject;
        }
        catch (JsonException e)
        {
            throw new FormatException($"not a DeltaSync state export: not valid JSON ({e.Message})", e);
        }

        if (document?["format"] is not JsonValue format || !format.TryGetValue<string>(out var name) || name != Format)
        {
            throw new FormatException($"not a DeltaSync state export (missing \"format\": \"{Format}\")");
        }

        var exportVersion = document["export_version"] is null ? 1 : Read("export_version", () => document["export_version"]!.GetValue<int>(), "a whole number");
        if (exportVersion > CurrentExportVersion)
        {
            throw new FormatException($"this state export has export_version {exportVersion}, newer than this deltasync reads ({CurrentExportVersion}); import it with a newer deltasync");
        }

        var streams = new List<(string, List<StoredCheckpoint>)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (streamNode, streamPath) in Items(document, "streams", "streams"))
        {
            var stream = Read(streamPath, () => streamNode!["stream"]!.GetValue<string>(), "stream");
            if (!seen.Add(stream))
            {
                throw new FormatException($"{streamPath}: stream '{stream}' appears twice in the file");
            }

            var versions = new List<StoredCheckpoint>();
            foreach (var (version, path) in Items(streamNode!.AsObject(), "versions", streamPath + ".versions"))
            {
                versions.Add(Read(
                    path,
                    () => new StoredCheckpoint(
                        stream,
                        version!["version"]!.GetValue<long>(),
                        version["payload"]!.GetValue<string>(),
                        InstantPattern.ExtendedIso.Parse(version["saved_at"]!.GetValue<string>()).GetValueOrThrow()),
                    "version, saved_at and payload"));
            }

            versions.Sort((a, b) => a.Version.CompareTo(b.Version));
            if (versions.Any(v => v.Version <= 0) || versions.Select(v => v.Version).Distinct().Count() != versions.Count)
            {
                throw new FormatException($"{streamPath}: versions of '{stream}' must be distinct positive numbers");
            }

            streams.Add((stream, versions));
        }

        var letters = new List<DeadLetter>();
        foreach (var (d, path) in Items(document, "dead_letters", "dead_letters"))
        {
            letters.Add(Read(
                path,
                () => new DeadLetter(
                    d!["stream"]!.GetValue<string>(),
                    d["table"]!.GetValue<string>(),
                    d["record_id"]!.GetValue<string>(),
                    d["raw_record"]!.GetValue<string>(),
                    d["reason"]!.GetValue<string>(),
                    Enum.Parse<ErrorClass>(d["error_class"]!.GetValue<string>(), ignoreCase: true),
                    Position.Parse(d["position"]!.GetValue<string>()),
                    InstantPattern.ExtendedIso.Parse(d["failed_at"]!.GetValue<string>()).GetValueOrThrow(),
                    d["attempts"]?.GetValue<int>() ?? 1),
                "stream, table, record_id, raw_record, reason, error_class, position and failed_at"));
        }

        var log = new List<ConflictLogRecord>();
        foreach (var (e, path) in Items(document, "conflict_log", "conflict_log"))
        {
            log.Add(Read(
                path,
                () => new ConflictLogRecord(
                    e!["entry_id"]!.GetValue<string>(),
                    e["conflict_id"]!.GetValue<string>(),
                    e["stream"]!.GetValue<string>(),
                    e["kind"]!.GetValue<string>(),
                    InstantPattern.ExtendedIso.Parse(e["logged_at"]!.GetValue<string>()).GetValueOrThrow(),
                    e["json"]!.GetValue<string>()),
                "entry_id, conflict_id, stream, kind, logged_at and json"));
        }

        var reviews = new List<ConflictReview>();
        foreach (var (r, path) in Items(document, "conflict_reviews", "conflict_reviews"))
        {
            reviews.Add(Read(
                path,
                () => new ConflictReview(
                    r!["conflict_id"]!.GetValue<string>(),
                    r["stream"]!.GetValue<string>(),
                    r["table"]!.GetValue<string>(),
                    r["record_id"]!.GetValue<string>(),
                    r["key"]!.GetValue<string>(),
                    InstantPattern.ExtendedIso.Parse(r["detected_at"]!.GetValue<string>()).GetValueOrThrow(),
                    r["record"]!.GetValue<string>()),
                "conflict_id, stream, table, record_id, key, detected_at and record"));
        }

        return (streams, letters, log, reviews);
    }

    private static IEnumerable<(JsonNode? Node, string Path)> Items(JsonObject parent, string key, string path) =>
        parent[key] switch
        {
            null => [],
            JsonArray array => array.Select((node, i) => (node, string.Create(CultureInfo.InvariantCulture, $"{path}[{i}]"))),
            _ => throw new FormatException($"{path}: expected a list"),
        };

    private static T Read<T>(string path, Func<T> read, string expected)
    {
        try
        {
            return read();
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException or ArgumentException or UnparsableValueException)
        {
            throw new FormatException($"{path}: expected {expected} ({e.Message})", e);
        }
    }
}
