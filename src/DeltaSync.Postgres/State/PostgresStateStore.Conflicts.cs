using DeltaSync.Core.State;
using Npgsql;
using NodaTime;

namespace DeltaSync.Postgres.State;

/// <summary>
/// The conflict log (<c>state_conflict_log</c>, append-only, ordered by an identity column) and the review queue
/// (<c>state_conflict_reviews</c>). Created on first use, so stores initialized before conflicts existed keep their
/// schema version and older DeltaSync versions can still read them.
/// </summary>
public sealed partial class PostgresStateStore
{
    private volatile bool _conflictTablesReady;

    private string ConflictLog => PostgresSql.Qualified(_schema, "state_conflict_log");

    private string ConflictReviews => PostgresSql.Qualified(_schema, "state_conflict_reviews");

    public Task AppendConflictLogAsync(IReadOnlyList<ConflictLogRecord> entries, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (entries.Count == 0)
        {
            return Task.CompletedTask;
        }

        return WithConnectionAsync(
            $"append {entries.Count} conflict log entries",
            async connection =>
            {
                await EnsureConflictTablesAsync(connection, cancellationToken).ConfigureAwait(false);
                await using var command = new NpgsqlCommand(
                    $"""
                    INSERT INTO {ConflictLog} (entry_id, conflict_id, stream, kind, logged_at, entry)
                    SELECT a, b, c, d, f, g FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[]) WITH ORDINALITY AS e(a, b, c, d, f, g, n)
                    ORDER BY n
                    ON CONFLICT (entry_id) DO NOTHING
                    """,
                    connection);
                Add(command, entries.Select(e => e.EntryId).ToArray());
                Add(command, entries.Select(e => e.ConflictId).ToArray());
                Add(command, entries.Select(e => e.Stream).ToArray());
                Add(command, entries.Select(e => e.Kind).ToArray());
                Add(command, entries.Select(e => ToDateTime(e.LoggedAt)).ToArray());
                Add(command, entries.Select(e => e.Json).ToArray());
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            },
            cancellationToken);
    }

    public Task<IReadOnlyList<ConflictLogRecord>> ReadConflictLogAsync(string? conflictId, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        return WithConnectionAsync<IReadOnlyList<ConflictLogRecord>>(
            "read the conflict log",
            async connection =>
            {
                await EnsureConflictTablesAsync(connection, cancellationToken).ConfigureAwait(false);
                await using var command = new NpgsqlCommand(
                    conflictId is null
                        ? $"SELECT entry_id, conflict_id, stream, kind, logged_at, entry FROM {ConflictLog} ORDER BY seq LIMIT $1"
                        : $"SELECT entry_id, conflict_id, stream, kind, logged_at, entry FROM {ConflictLog} WHERE conflict_id = $2 ORDER BY seq LIMIT $1",
                    connection);
                Add(command, limit);
                if (conflictId is not null)
                {
                    Add(command, conflictId);
                }

                var entries = new List<ConflictLogRecord>();
                var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        entries.Add(new ConflictLogRecord(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), ToInstant(reader.GetDateTime(4)), reader.GetString(5)));
                    }
                }

                return entries;
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

        return WithConnectionAsync(
            $"queue {reviews.Count} conflicts for review",
            async connection =>
            {
                await EnsureConflictTablesAsync(connection, cancellationToken).ConfigureAwait(false);
                foreach (var review in reviews)
                {
                    await using var command = new NpgsqlCommand(
                        $"""
                        INSERT INTO {ConflictReviews} (conflict_id, stream, table_name, record_id, record_key, detected_at, record) VALUES ($1, $2, $3, $4, $5, $6, $7)
                        ON CONFLICT (conflict_id) DO UPDATE SET stream = excluded.stream, table_name = excluded.table_name,
                            record_id = excluded.record_id, record_key = excluded.record_key, detected_at = excluded.detected_at, record = excluded.record
                        """,
                        connection);
                    Add(command, review.ConflictId);
                    Add(command, review.Stream);
                    Add(command, review.Table);
                    Add(command, review.RecordId);
                    Add(command, review.Key);
                    Add(command, ToDateTime(review.DetectedAt));
                    Add(command, review.RecordJson);
                    await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
            },
            cancellationToken);
    }

    public Task<IReadOnlyList<ConflictReview>> ReadConflictReviewsAsync(string? conflictId, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        return WithConnectionAsync<IReadOnlyList<ConflictReview>>(
            "read the conflict review queue",
            async connection =>
            {
                await EnsureConflictTablesAsync(connection, cancellationToken).ConfigureAwait(false);
                await using var command = new NpgsqlCommand(
                    conflictId is null
                        ? $"SELECT conflict_id, stream, table_name, record_id, record_key, detected_at, record FROM {ConflictReviews} ORDER BY detected_at, conflict_id LIMIT $1"
                        : $"SELECT conflict_id, stream, table_name, record_id, record_key, detected_at, record FROM {ConflictReviews} WHERE conflict_id = $2 LIMIT $1",
                    connection);
                Add(command, limit);
                if (conflictId is not null)
                {
                    Add(command, conflictId);
                }

                var reviews = new List<ConflictReview>();
                var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        reviews.Add(new ConflictReview(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4), ToInstant(reader.GetDateTime(5)), reader.GetString(6)));
                    }
                }

                return reviews;
            },
            cancellationToken);
    }

    public Task<bool> RemoveConflictReviewAsync(string conflictId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(conflictId);
        return WithConnectionAsync(
            $"remove conflict '{conflictId}' from the review queue",
            async connection =>
            {
                await EnsureConflictTablesAsync(connection, cancellationToken).ConfigureAwait(false);
                await using var command = new NpgsqlCommand($"DELETE FROM {ConflictReviews} WHERE conflict_id = $1", connection);
                Add(command, conflictId);
                return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
            },
            cancellationToken);
    }

    private async Task EnsureConflictTablesAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        if (_conflictTablesReady)
        {
            return;
        }

        await using var command = new NpgsqlCommand(
            $"""
            CREATE TABLE IF NOT EXISTS {ConflictLog} (
                seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                entry_id text COLLATE "C" NOT NULL UNIQUE,
                conflict_id text COLLATE "C" NOT NULL,
                stream text COLLATE "C" NOT NULL,
                kind text NOT NULL,
                logged_at timestamptz NOT NULL,
                entry text NOT NULL);
            CREATE INDEX IF NOT EXISTS {PostgresSql.Quote("state_conflict_log_by_conflict")} ON {ConflictLog} (conflict_id, seq);
            CREATE TABLE IF NOT EXISTS {ConflictReviews} (
                conflict_id text COLLATE "C" PRIMARY KEY,
                stream text COLLATE "C" NOT NULL,
                table_name text NOT NULL,
                record_id text NOT NULL,
                record_key text NOT NULL,
                detected_at timestamptz NOT NULL,
                record text NOT NULL);
            """,
            connection);
        try
        {
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UniqueViolation or PostgresErrorCodes.DuplicateTable or PostgresErrorCodes.DuplicateObject)
        {
            // Two processes creating the tables at once: the other one won, the tables exist.
        }

        _conflictTablesReady = true;
    }

}
