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
    IReadOnlyList<string> StreamsAhead);

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

    private readonly IStateStore _store;

    public StateImport(IStateStore store)
    {
        _store = store;
    }

    public async Task<StateImportResult> RunAsync(string json, bool replace, CancellationToken cancellationToken)
    {
        var (streams, letters) = Parse(json);
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
            foreach (var stream in streams.Select(s => s.Stream).Concat(letters.Select(l => l.Stream)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
            {
                await _store.DeleteStreamAsync(stream, cancellationToken).ConfigureAwait(false);
                var queued = await _store.ReadDeadLettersAsync(stream, int.MaxValue, cancellationToken).ConfigureAwait(false);
                await _store.RemoveDeadLettersAsync(queued, cancellationToken).ConfigureAwait(false);
                replaced.Add(stream);
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

        return new StateImportResult(toAppend.Count, skipped, newLetters.Count, letters.Count - newLetters.Count, replaced, ahead);
    }

    /// <summary>Reads the whole document, or says where it is malformed; versions come back oldest first.</summary>
    private static (List<(string Stream, List<StoredCheckpoint> Versions)> Streams, List<DeadLetter> Letters) Parse(string json)
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

        return (streams, letters);
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
