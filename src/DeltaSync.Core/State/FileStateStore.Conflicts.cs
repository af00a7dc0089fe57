using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using NodaTime.Text;

namespace DeltaSync.Core.State;

/// <summary>
/// The conflict log as <c>conflicts/log.jsonl</c> (append-only JSON lines, fsynced after each append; a torn last line
/// left by a crash is skipped when read) and the review queue as <c>conflicts/reviews/&lt;conflict id&gt;.json</c>.
/// </summary>
public sealed partial class FileStateStore
{
    private readonly SemaphoreSlim _conflictGate = new(1, 1);

    private string Conflicts => Path.Combine(_root, "conflicts");

    private string ConflictLogPath => Path.Combine(Conflicts, "log.jsonl");

    private string Reviews => Path.Combine(Conflicts, "reviews");

    public async Task AppendConflictLogAsync(IReadOnlyList<ConflictLogRecord> entries, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (entries.Count == 0)
        {
            return;
        }

        await _conflictGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            DurableFile.EnsureDirectory(Conflicts);
            var logged = (await ReadLogAsync(cancellationToken).ConfigureAwait(false)).Select(e => e.EntryId).ToHashSet(StringComparer.Ordinal);
            var text = new StringBuilder();
            foreach (var entry in entries.Where(e => logged.Add(e.EntryId)))
            {
                var line = new JsonObject
                {
                    ["entry_id"] = entry.EntryId,
                    ["conflict_id"] = entry.ConflictId,
                    ["stream"] = entry.Stream,
                    ["kind"] = entry.Kind,
                    ["logged_at"] = InstantPattern.ExtendedIso.Format(entry.LoggedAt),
                    ["entry"] = entry.Json,
                };
                text.Append(line.ToJsonString()).Append('\n');
            }

            if (text.Length == 0)
            {
                return;
            }

            var existed = File.Exists(ConflictLogPath);
            var stream = new FileStream(ConflictLogPath, FileMode.Append, FileAccess.Write, FileShare.Read);
            await using (stream.ConfigureAwait(false))
            {
                await stream.WriteAsync(Encoding.UTF8.GetBytes(text.ToString()), cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }

            if (!existed)
            {
                NativeFileSystem.FlushDirectory(Conflicts);
            }
        }
        finally
        {
            _conflictGate.Release();
        }
    }

    public async Task<IReadOnlyList<ConflictLogRecord>> ReadConflictLogAsync(string? conflictId, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        var entries = await ReadLogAsync(cancellationToken).ConfigureAwait(false);
        return entries.Where(e => conflictId is null || e.ConflictId == conflictId).Take(limit).ToList();
    }

    public async Task AddConflictReviewsAsync(IReadOnlyList<ConflictReview> reviews, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reviews);
        foreach (var review in reviews)
        {
            var json = new JsonObject
            {
                ["conflict_id"] = review.ConflictId,
                ["stream"] = review.Stream,
                ["table"] = review.Table,
                ["record_id"] = review.RecordId,
                ["key"] = review.Key,
                ["detected_at"] = InstantPattern.ExtendedIso.Format(review.DetectedAt),
                ["record"] = review.RecordJson,
            };
            await DurableFile.ReplaceAsync(Path.Combine(Reviews, Escape(review.ConflictId) + ".json"), Encoding.UTF8.GetBytes(json.ToJsonString(Indented)), cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task<IReadOnlyList<ConflictReview>> ReadConflictReviewsAsync(string? conflictId, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        if (!Directory.Exists(Reviews))
        {
            return [];
        }

        var paths = conflictId is null
            ? Directory.EnumerateFiles(Reviews, "*.json").ToList()
            : [.. new[] { Path.Combine(Reviews, Escape(conflictId) + ".json") }.Where(File.Exists)];
        var reviews = new List<ConflictReview>(paths.Count);
        foreach (var path in paths)
        {
            var o = JsonNode.Parse(await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false))!.AsObject();
            reviews.Add(new ConflictReview(
                o["conflict_id"]!.GetValue<string>(),
                o["stream"]!.GetValue<string>(),
                o["table"]!.GetValue<string>(),
                o["record_id"]!.GetValue<string>(),
                o["key"]!.GetValue<string>(),
                InstantPattern.ExtendedIso.Parse(o["detected_at"]!.GetValue<string>()).GetValueOrThrow(),
                o["record"]!.GetValue<string>()));
        }

        return reviews.OrderBy(r => r.DetectedAt).ThenBy(r => r.ConflictId, StringComparer.Ordinal).Take(limit).ToList();
    }

    public Task<bool> RemoveConflictReviewAsync(string conflictId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(conflictId);
        cancellationToken.ThrowIfCancellationRequested();
        var path = Path.Combine(Reviews, Escape(conflictId) + ".json");
        if (!File.Exists(path))
        {
            return Task.FromResult(false);
        }

        File.Delete(path);
        NativeFileSystem.FlushDirectory(Reviews);
        return Task.FromResult(true);
    }

    private async Task<List<ConflictLogRecord>> ReadLogAsync(CancellationToken cancellationToken)
    {
        var entries = new List<ConflictLogRecord>();
        if (!File.Exists(ConflictLogPath))
        {
            return entries;
        }

        foreach (var line in await File.ReadAllLinesAsync(ConflictLogPath, cancellationToken).ConfigureAwait(false))
        {
            if (line.Length == 0)
            {
                continue;
            }

            try
            {
                var o = JsonNode.Parse(line)!.AsObject();
                entries.Add(new ConflictLogRecord(
                    o["entry_id"]!.GetValue<string>(),
                    o["conflict_id"]!.GetValue<string>(),
                    o["stream"]!.GetValue<string>(),
                    o["kind"]!.GetValue<string>(),
                    InstantPattern.ExtendedIso.Parse(o["logged_at"]!.GetValue<string>()).GetValueOrThrow(),
                    o["entry"]!.GetValue<string>()));
            }
            catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException or UnparsableValueException)
            {
                // A line torn by a crash mid-append: it was never acknowledged, so nothing is lost by skipping it.
            }
        }

        return entries;
    }
}
