using DeltaSync.Core.State;
using Microsoft.Data.Sqlite;
using NodaTime.Text;

namespace DeltaSync.Sqlite.State;

/// <summary>The conflict log (append-only, <c>conflict_log</c>) and the review queue (<c>conflict_reviews</c>).</summary>
public sealed partial class SqliteStateStore
{
    public async Task AppendConflictLogAsync(IReadOnlyList<ConflictLogRecord> entries, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (entries.Count == 0)
        {
            return;
        }

        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                await using var command = connection.CreateCommand();
                command.CommandText = """
                    INSERT INTO conflict_log (entry_id, conflict_id, stream, kind, logged_at, entry)
                    VALUES ($entry_id, $conflict_id, $stream, $kind, $logged_at, $entry) ON CONFLICT (entry_id) DO NOTHING
                    """;
                var entryId = command.Parameters.Add("$entry_id", SqliteType.Text);
                var conflictId = command.Parameters.Add("$conflict_id", SqliteType.Text);
                var stream = command.Parameters.Add("$stream", SqliteType.Text);
                var kind = command.Parameters.Add("$kind", SqliteType.Text);
                var loggedAt = command.Parameters.Add("$logged_at", SqliteType.Text);
                var entry = command.Parameters.Add("$entry", SqliteType.Text);
                await command.PrepareAsync(cancellationToken).ConfigureAwait(false);
                foreach (var record in entries)
                {
                    entryId.Value = record.EntryId;
                    conflictId.Value = record.ConflictId;
                    stream.Value = record.Stream;
                    kind.Value = record.Kind;
                    loggedAt.Value = SortableIso.Format(record.LoggedAt);
                    entry.Value = record.Json;
                    await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
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

    public async Task AddConflictReviewsAsync(IReadOnlyList<ConflictReview> reviews, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reviews);
        if (reviews.Count == 0)
        {
            return;
        }

        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                await using var command = connection.CreateCommand();
                command.CommandText = """
                    INSERT INTO conflict_reviews (conflict_id, stream, table_name, record_id, record_key, detected_at, record)
                    VALUES ($conflict_id, $stream, $table_name, $record_id, $record_key, $detected_at, $record)
                    ON CONFLICT (conflict_id) DO UPDATE SET stream = excluded.stream, table_name = excluded.table_name,
                        record_id = excluded.record_id, record_key = excluded.record_key, detected_at = excluded.detected_at, record = excluded.record
                    """;
                var conflictId = command.Parameters.Add("$conflict_id", SqliteType.Text);
                var stream = command.Parameters.Add("$stream", SqliteType.Text);
                var table = command.Parameters.Add("$table_name", SqliteType.Text);
                var recordId = command.Parameters.Add("$record_id", SqliteType.Text);
                var recordKey = command.Parameters.Add("$record_key", SqliteType.Text);
                var detectedAt = command.Parameters.Add("$detected_at", SqliteType.Text);
                var record = command.Parameters.Add("$record", SqliteType.Text);
                await command.PrepareAsync(cancellationToken).ConfigureAwait(false);
                foreach (var review in reviews)
                {
                    conflictId.Value = review.ConflictId;
                    stream.Value = review.Stream;
                    table.Value = review.Table;
                    recordId.Value = review.RecordId;
                    recordKey.Value = review.Key;
                    detectedAt.Value = SortableIso.Format(review.DetectedAt);
                    record.Value = review.RecordJson;
                    await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
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
