using System.Text.Json;
using System.Text.Json.Serialization;
using DeltaSync.Core.State;
using NodaTime.Text;
using StackExchange.Redis;

namespace DeltaSync.Redis.State;

/// <summary>
/// The conflict log as the list <c>conflicts:log</c> (append-only; <c>conflicts:log:ids</c> remembers entry ids so an
/// entry is appended once, in the same script) and the review queue as the hash <c>conflicts:reviews</c>.
/// </summary>
public sealed partial class RedisStateStore
{
    private static readonly RedisKey ConflictLogKey = "conflicts:log";
    private static readonly RedisKey ConflictLogIds = "conflicts:log:ids";
    private static readonly RedisKey ConflictReviewsKey = "conflicts:reviews";

    private const string AppendConflictLogScript = """
        for i = 1, #ARGV, 2 do
          if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
            redis.call('RPUSH', KEYS[1], ARGV[i + 1])
          end
        end
        return 0
        """;

    public Task AppendConflictLogAsync(IReadOnlyList<ConflictLogRecord> entries, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (entries.Count == 0)
        {
            return Task.CompletedTask;
        }

        var values = new List<RedisValue>(entries.Count * 2);
        foreach (var entry in entries)
        {
            values.Add(entry.EntryId);
            values.Add(JsonSerializer.Serialize(new StoredLogEntry(entry.EntryId, entry.ConflictId, entry.Stream, entry.Kind, InstantPattern.ExtendedIso.Format(entry.LoggedAt), entry.Json)));
        }

        return RunAsync(
            $"append {entries.Count} conflict log entries",
            database => database.ScriptEvaluateAsync(AppendConflictLogScript, [ConflictLogKey, ConflictLogIds], [.. values]),
            cancellationToken);
    }

    public Task<IReadOnlyList<ConflictLogRecord>> ReadConflictLogAsync(string? conflictId, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        return RunAsync<IReadOnlyList<ConflictLogRecord>>(
            "read the conflict log",
            async database =>
            {
                var rows = await database.ListRangeAsync(ConflictLogKey).ConfigureAwait(false);
                return rows
                    .Select(r => JsonSerializer.Deserialize<StoredLogEntry>((string)r!)!)
                    .Where(e => conflictId is null || e.ConflictId == conflictId)
                    .Take(limit)
                    .Select(e => new ConflictLogRecord(e.EntryId, e.ConflictId, e.Stream, e.Kind, InstantPattern.ExtendedIso.Parse(e.LoggedAt).GetValueOrThrow(), e.Json))
                    .ToList();
            },
            cancellationToken);
    }

    public Task AddConflictReviewsAsync(IReadOnlyList<ConflictReview> reviews, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reviews);
        if (reviews.Count == 0)
        {
            return Task.CompletedTask;
        }

        var fields = reviews
            .Select(r => new HashEntry(r.ConflictId, JsonSerializer.Serialize(new StoredReview(r.ConflictId, r.Stream, r.Table, r.RecordId, r.Key, InstantPattern.ExtendedIso.Format(r.DetectedAt), r.RecordJson))))
            .ToArray();
        return RunAsync($"queue {reviews.Count} conflicts for review", database => database.HashSetAsync(ConflictReviewsKey, fields), cancellationToken);
    }

    public Task<IReadOnlyList<ConflictReview>> ReadConflictReviewsAsync(string? conflictId, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        return RunAsync<IReadOnlyList<ConflictReview>>(
            "read the conflict review queue",
            async database =>
            {
                IEnumerable<RedisValue> values = conflictId is null
                    ? (await database.HashGetAllAsync(ConflictReviewsKey).ConfigureAwait(false)).Select(e => e.Value)
                    : [await database.HashGetAsync(ConflictReviewsKey, conflictId).ConfigureAwait(false)];
                return values
                    .Where(v => v.HasValue)
                    .Select(v => JsonSerializer.Deserialize<StoredReview>((string)v!)!)
                    .Select(r => new ConflictReview(r.ConflictId, r.Stream, r.Table, r.RecordId, r.Key, InstantPattern.ExtendedIso.Parse(r.DetectedAt).GetValueOrThrow(), r.RecordJson))
                    .OrderBy(r => r.DetectedAt)
                    .ThenBy(r => r.ConflictId, StringComparer.Ordinal)
                    .Take(limit)
                    .ToList();
            },
            cancellationToken);
    }

    public Task<bool> RemoveConflictReviewAsync(string conflictId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(conflictId);
        return RunAsync($"remove conflict '{conflictId}' from the review queue", database => database.HashDeleteAsync(ConflictReviewsKey, conflictId), cancellationToken);
    }

    private sealed record StoredLogEntry(
        [property: JsonPropertyName("entry_id")] string EntryId,
        [property: JsonPropertyName("conflict_id")] string ConflictId,
        [property: JsonPropertyName("stream")] string Stream,
        [property: JsonPropertyName("kind")] string Kind,
        [property: JsonPropertyName("logged_at")] string LoggedAt,
        [property: JsonPropertyName("entry")] string Json);

    private sealed record StoredReview(
        [property: JsonPropertyName("conflict_id")] string ConflictId,
        [property: JsonPropertyName("stream")] string Stream,
        [property: JsonPropertyName("table")] string Table,
        [property: JsonPropertyName("record_id")] string RecordId,
        [property: JsonPropertyName("key")] string Key,
        [property: JsonPropertyName("detected_at")] string DetectedAt,
        [property: JsonPropertyName("record")] string RecordJson);
}
