using DeltaSync.Core.State;
using Microsoft.Data.Sqlite;
using NodaTime.Text;

namespace DeltaSync.Sqlite.State;

/// <summary>The conflict log (append-only, <c>conflict_log</c>) and the review queue (<c>conflict_reviews</c>).</summary>
public sealed partial class SqliteStateStore
{
    public Task AppendConflictLogAsync(IReadOnlyList<ConflictLogRecord> entries, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entries);
        return ExecuteEachAsync(
            """
            INSERT INTO conflict_log (entry_id, conflict_id, stream, kind, logged_at, entry)
            VALUES ($entry_id, $conflict_id, $stream, $kind, $logged_at, $entry) ON CONFLICT (entry_id) DO NOTHING
            """,
            entries,
            record => [record.EntryId, record.ConflictId, record.Stream, record.Kind, SortableIso.Format(record.LoggedAt), record.Json],
            cancellationToken);
    }

    public async Task<IReadOnlyList<ConflictLogRecord>> ReadConflictLogAsync(string? conflictId, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = connection.CreateCommand();
            command.CommandText = conflictId is null
                ? "SELECT entry_id, conflict_id, stream, kind, logged_at, entry FROM conflict_log ORDER BY seq LIMIT $limit"
                : "SELECT entry_id, conflict_id, stream, kind, logged_at, entry FROM conflict_log WHERE conflict_id = $conflict_id ORDER BY seq LIMIT $limit";
            if (conflictId is not null)
            {
                command.Parameters.AddWithValue("$conflict_id", conflictId);
            }

            command.Parameters.AddWithValue("$limit", limit);
            var entries = new List<ConflictLogRecord>();
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    entries.Add(new ConflictLogRecord(
                        reader.GetString(0),
                        reader.GetString(1),
                        reader.GetString(2),
                        reader.GetString(3),
                        InstantPattern.ExtendedIso.Parse(reader.GetString(4)).GetValueOrThrow(),
                        reader.GetString(5)));
                }
            }

            return entries;
        }
    }

    public Task AddConflictReviewsAsync(IReadOnlyList<ConflictReview> reviews, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reviews);
        return ExecuteEachAsync(
            """
            INSERT INTO conflict_reviews (conflict_id, stream, table_name, record_id, record_key, detected_at, record)
            VALUES ($conflict_id, $stream, $table_name, $record_id, $record_key, $detected_at, $record)
            ON CONFLICT (conflict_id) DO UPDATE SET stream = excluded.stream, table_name = excluded.table_name,
                record_id = excluded.record_id, record_key = excluded.record_key, detected_at = excluded.detected_at, record = excluded.record
            """,
            reviews,
            review => [review.ConflictId, review.Stream, review.Table, review.RecordId, review.Key, SortableIso.Format(review.DetectedAt), review.RecordJson],
            cancellationToken);
    }

    public async Task<IReadOnlyList<ConflictReview>> ReadConflictReviewsAsync(string? conflictId, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = connection.CreateCommand();
            command.CommandText = conflictId is null
                ? "SELECT conflict_id, stream, table_name, record_id, record_key, detected_at, record FROM conflict_reviews ORDER BY detected_at, conflict_id LIMIT $limit"
                : "SELECT conflict_id, stream, table_name, record_id, record_key, detected_at, record FROM conflict_reviews WHERE conflict_id = $conflict_id LIMIT $limit";
            if (conflictId is not null)
            {
                command.Parameters.AddWithValue("$conflict_id", conflictId);
            }

            command.Parameters.AddWithValue("$limit", limit);
            var reviews = new List<ConflictReview>();
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    reviews.Add(new ConflictReview(
                        reader.GetString(0),
                        reader.GetString(1),
                        reader.GetString(2),
                        reader.GetString(3),
                        reader.GetString(4),
                        InstantPattern.ExtendedIso.Parse(reader.GetString(5)).GetValueOrThrow(),
                        reader.GetString(6)));
                }
            }

            return reviews;
        }
    }

    public async Task<bool> RemoveConflictReviewAsync(string conflictId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(conflictId);
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "DELETE FROM conflict_reviews WHERE conflict_id = $conflict_id";
            command.Parameters.AddWithValue("$conflict_id", conflictId);
            return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
        }
    }
}
