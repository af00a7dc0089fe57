using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using NodaTime;
using NodaTime.Text;
using Npgsql;
using NpgsqlTypes;

namespace DeltaSync.Postgres.State;

/// <summary>
/// Sync state in PostgreSQL tables under one schema (default <c>deltasync</c>), named <c>state_*</c> so they can share
/// the schema with the destination's <c>ledger</c> tables. The primary key <c>(stream, version)</c> turns two writers
/// racing for one version into a <see cref="StateConflictException"/>; a per-stream lease with a fencing epoch keeps
/// one writer per table and refuses a stale writer's checkpoint (<see cref="AppendFencedAsync"/>).
/// </summary>
/// <remarks>
/// Instants are stored as <c>timestamptz</c>, so they keep microseconds (PostgreSQL's precision), not NodaTime's
/// nanoseconds. Lease times come from the server's clock only, so workers with skewed clocks still agree on expiry.
/// </remarks>
public sealed partial class PostgresStateStore : IStateStore, ILeaseStore
{
    /// <summary>The layout this code reads and writes, kept in <c>state_meta.schema_version</c>.</summary>
    private const int SchemaVersion = 1;

    private const string SchemaVersionKey = "schema_version";
    private const string Role = "state";
    private const int InitializeAttempts = 3;
    private const int AcquireAttempts = 3;

    private static readonly Instant EarliestDateTime = Instant.FromDateTimeUtc(DateTime.SpecifyKind(DateTime.MinValue, DateTimeKind.Utc));
    private static readonly Instant LatestDateTime = Instant.FromDateTimeUtc(DateTime.SpecifyKind(DateTime.MaxValue, DateTimeKind.Utc));

    private readonly string _connection;
    private readonly string _schema;
    private readonly NpgsqlDataSource _dataSource;
    private readonly string _meta;
    private readonly string _checkpoints;
    private readonly string _deadLetters;
    private readonly string _runs;
    private readonly string _leases;

    /// <param name="connection">A <c>postgresql://</c> URI or an Npgsql connection string.</param>
    /// <param name="schema">The schema holding the state tables; created by <see cref="InitializeAsync"/>.</param>
    public PostgresStateStore(string connection, string schema = "deltasync")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connection);
        ArgumentException.ThrowIfNullOrWhiteSpace(schema);
        _connection = connection;
        _schema = schema;
        _dataSource = PostgresConnectionFactory.CreateDataSource(connection, "deltasync-state");
        _meta = PostgresSql.Qualified(schema, "state_meta");
        _checkpoints = PostgresSql.Qualified(schema, "state_checkpoints");
        _deadLetters = PostgresSql.Qualified(schema, "state_dead_letters");
        _runs = PostgresSql.Qualified(schema, "state_runs");
        _leases = PostgresSql.Qualified(schema, "state_leases");
    }

    /// <summary>Host, port, database and schema; never credentials.</summary>
    public string Description => $"{PostgresConnectionFactory.Describe(_connection)} (schema {_schema})";

    /// <summary>
    /// Creates the schema and tables when missing. Safe when several processes initialize at once: creation runs in
    /// one transaction under an advisory lock named after the schema.
    /// </summary>
    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await WithConnectionAsync("initialize", connection => InitializeAsync(connection, cancellationToken), cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (SyncException e) when (attempt < InitializeAttempts && e.InnerException is PostgresException pg && IsCreationRace(pg.SqlState))
            {
                // Someone not taking our advisory lock (a destination creating the same schema, an operator) created an
                // object between our check and our CREATE: the next attempt finds it.
            }
        }
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<StoredCheckpoint>> ReadHistoryAsync(string stream, int limit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        return WithConnectionAsync<IReadOnlyList<StoredCheckpoint>>(
            $"read the history of '{stream}'",
            async connection =>
            {
                await using var command = new NpgsqlCommand($"SELECT version, payload, saved_at FROM {_checkpoints} WHERE stream = $1 ORDER BY version DESC LIMIT $2", connection);
                Add(command, stream);
                Add(command, limit);
                var history = new List<StoredCheckpoint>();
                var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        // The payload is returned whatever it holds: judging it is CheckpointHistory's job.
                        history.Add(new StoredCheckpoint(stream, reader.GetInt64(0), reader.GetString(1), ToInstant(reader.GetDateTime(2))));
                    }
                }

                return history;
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task AppendAsync(StoredCheckpoint checkpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(checkpoint.Version);
        return WithConnectionAsync(
            $"append version {checkpoint.Version} of '{checkpoint.Stream}'",
            async connection =>
            {
                await using var command = new NpgsqlCommand($"INSERT INTO {_checkpoints} (stream, version, payload, saved_at) VALUES ($1, $2, $3, $4)", connection);
                AddCheckpoint(command, checkpoint);
                await InsertCheckpointAsync(command, checkpoint, cancellationToken).ConfigureAwait(false);
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<string>> ListStreamsAsync(CancellationToken cancellationToken) =>
        WithConnectionAsync<IReadOnlyList<string>>(
            "list the streams",
            async connection =>
            {
                await using var command = new NpgsqlCommand($"SELECT DISTINCT stream FROM {_checkpoints} ORDER BY stream", connection);
                var streams = new List<string>();
                var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        streams.Add(reader.GetString(0));
                    }
                }

                return streams;
            },
            cancellationToken);

    /// <inheritdoc/>
    // The lease row stays: its epoch must keep growing across a reset, or a writer fenced off before the reset could
    // match a later epoch.
    public Task DeleteStreamAsync(string stream, CancellationToken cancellationToken) =>
        DeleteVersionsAsync(stream, long.MaxValue, $"delete the history of '{stream}'", cancellationToken);

    /// <inheritdoc/>
    public Task TrimHistoryAsync(string stream, long version, CancellationToken cancellationToken) =>
        DeleteVersionsAsync(stream, version, $"trim the history of '{stream}'", cancellationToken);

    /// <summary>Deletes the stream's versions below <paramref name="version"/>; <paramref name="action"/> names it in errors.</summary>
    private Task DeleteVersionsAsync(string stream, long version, string action, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return WithConnectionAsync(
            action,
            async connection =>
            {
                await using var command = new NpgsqlCommand($"DELETE FROM {_checkpoints} WHERE stream = $1 AND version < $2", connection);
                Add(command, stream);
                command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = version });
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task AddDeadLettersAsync(IReadOnlyList<DeadLetter> deadLetters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(deadLetters);
        if (deadLetters.Count == 0)
        {
            return Task.CompletedTask;
        }

        // One INSERT … ON CONFLICT cannot touch a row twice, so equal letters within the batch are merged first
        // (attempts summed, the last one's reason kept, exactly as if they were inserted one after another).
        var merged = new List<(DeadLetter Letter, byte[] Key, int Attempts)>(deadLetters.Count);
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var letter in deadLetters)
        {
            var key = letter.DedupeKey();
            var hex = Convert.ToHexString(key);
            if (index.TryGetValue(hex, out var at))
            {
                merged[at] = (letter, merged[at].Key, merged[at].Attempts + Math.Max(1, letter.Attempts));
            }
            else
            {
                index.Add(hex, merged.Count);
                merged.Add((letter, key, Math.Max(1, letter.Attempts)));
            }
        }

        return WithConnectionAsync(
            $"add {deadLetters.Count} dead letters",
            async connection =>
            {
                // Arrays unnested in their order, so letters failing at the same instant keep the order they were given.
                await using var command = new NpgsqlCommand(
                    $"""
                    INSERT INTO {_deadLetters} AS d (stream, table_name, record_id, raw_record, reason, error_class, position, failed_at, attempts, dedupe_key)
                    SELECT l.stream, l.table_name, l.record_id, l.raw_record, l.reason, l.error_class, l.position, l.failed_at, l.attempts, l.dedupe_key
                    FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                        WITH ORDINALITY AS l (stream, table_name, record_id, raw_record, reason, error_class, position, failed_at, attempts, dedupe_key, ord)
                    ORDER BY l.ord
                    ON CONFLICT (dedupe_key) DO UPDATE SET attempts = d.attempts + excluded.attempts,
                        reason = excluded.reason, error_class = excluded.error_class, failed_at = greatest(d.failed_at, excluded.failed_at)
                    """,
                    connection);
                Add(command, merged.Select(m => m.Letter.Stream).ToArray());
                Add(command, merged.Select(m => m.Letter.Table).ToArray());
                Add(command, merged.Select(m => m.Letter.RecordId).ToArray());
                Add(command, merged.Select(m => m.Letter.RawRecord).ToArray());
                Add(command, merged.Select(m => m.Letter.Reason).ToArray());
                Add(command, merged.Select(m => m.Letter.ErrorClass.ToString()).ToArray());
                Add(command, merged.Select(m => m.Letter.Position.ToString()).ToArray());
                Add(command, merged.Select(m => ToDateTime(m.Letter.FailedAt)).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.TimestampTz);
                Add(command, merged.Select(m => m.Attempts).ToArray());
                Add(command, merged.Select(m => m.Key).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bytea);
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<int> RemoveDeadLettersAsync(IReadOnlyList<DeadLetter> deadLetters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(deadLetters);
        if (deadLetters.Count == 0)
        {
            return Task.FromResult(0);
        }

        return WithConnectionAsync(
            $"remove {deadLetters.Count} dead letters",
            async connection =>
            {
                await using var command = new NpgsqlCommand($"DELETE FROM {_deadLetters} WHERE dedupe_key = ANY($1)", connection);
                Add(command, deadLetters.Select(d => d.DedupeKey()).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bytea);
                return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<DeadLetter>> ReadDeadLettersAsync(string? stream, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        return WithConnectionAsync<IReadOnlyList<DeadLetter>>(
            "read the dead letters",
            async connection =>
            {
                const string Columns = "stream, table_name, record_id, raw_record, reason, error_class, position, failed_at, attempts";
                await using var command = new NpgsqlCommand(
                    stream is null
                        ? $"SELECT {Columns} FROM {_deadLetters} ORDER BY failed_at, id LIMIT $1"
                        : $"SELECT {Columns} FROM {_deadLetters} WHERE stream = $2 ORDER BY failed_at, id LIMIT $1",
                    connection);
                Add(command, limit);
                if (stream is not null)
                {
                    Add(command, stream);
                }

                var letters = new List<DeadLetter>();
                var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        letters.Add(new DeadLetter(
                            reader.GetString(0),
                            reader.GetString(1),
                            reader.GetString(2),
                            reader.GetString(3),
                            reader.GetString(4),
                            Enum.Parse<ErrorClass>(reader.GetString(5), ignoreCase: true),
                            Position.Parse(reader.GetString(6)),
                            ToInstant(reader.GetDateTime(7)),
                            reader.GetInt32(8)));
                    }
                }

                return letters;
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task AppendRunAsync(RunRecord run, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        return WithConnectionAsync(
            $"store run '{run.RunId}'",
            async connection =>
            {
                await using var command = new NpgsqlCommand(
                    $"""
                    INSERT INTO {_runs} (run_id, completed_at, status, report) VALUES ($1, $2, $3, $4)
                    ON CONFLICT (run_id) DO UPDATE SET completed_at = excluded.completed_at, status = excluded.status, report = excluded.report
                    """,
                    connection);
                Add(command, run.RunId);
                Add(command, ToDateTime(run.CompletedAt));
                Add(command, run.Status);
                Add(command, run.ReportJson);
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                await using var prune = new NpgsqlCommand($"DELETE FROM {_runs} WHERE run_id IN (SELECT run_id FROM {_runs} ORDER BY completed_at DESC, run_id DESC OFFSET $1)", connection);
                Add(prune, RunRecord.Kept);
                await prune.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<string>> ReadRunIdsAsync(int limit, CancellationToken cancellationToken) =>
        ReadNewestRunsAsync("run_id", limit, reader => reader.GetString(0), cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<RunRecord>> ReadRunsAsync(int limit, CancellationToken cancellationToken) =>
        ReadNewestRunsAsync(
            "run_id, completed_at, status, report",
            limit,
            reader => new RunRecord(reader.GetString(0), ToInstant(reader.GetDateTime(1)), reader.GetString(2), reader.GetString(3)),
            cancellationToken);

    /// <summary><paramref name="columns"/> of the newest <paramref name="limit"/> runs, newest first.</summary>
    private Task<IReadOnlyList<T>> ReadNewestRunsAsync<T>(string columns, int limit, Func<NpgsqlDataReader, T> read, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        return WithConnectionAsync<IReadOnlyList<T>>(
            "read the runs",
            async connection =>
            {
                await using var command = new NpgsqlCommand($"SELECT {columns} FROM {_runs} ORDER BY completed_at DESC, run_id DESC LIMIT $1", connection);
                Add(command, limit);
                var runs = new List<T>();
                var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        runs.Add(read(reader));
                    }
                }

                return runs;
            },
            cancellationToken);
    }

    /// <summary>
    /// Takes or extends the lease on a stream for <paramref name="ttl"/> and returns its fencing epoch: unchanged when
    /// <paramref name="owner"/> still holds it, one higher when it was free, expired or released.
    /// </summary>
    /// <param name="owner">Names one worker instance; two workers must never share an owner name.</param>
    /// <exception cref="SyncException">(transient) another owner holds a lease that has not expired.</exception>
    public async Task<long> AcquireLeaseAsync(string stream, string owner, TimeSpan ttl, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentException.ThrowIfNullOrEmpty(owner);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ttl, TimeSpan.Zero);
        for (var attempt = 1; ; attempt++)
        {
            var epoch = await WithConnectionAsync(
                $"acquire the lease on '{stream}'",
                async connection =>
                {
                    // One upsert, so racing acquirers serialize on the row: the WHERE sees the winner's committed row.
                    await using var command = new NpgsqlCommand(
                        $"""
                        INSERT INTO {_leases} AS l (stream, owner, epoch, expires_at) VALUES ($1, $2, 1, now() + $3)
                        ON CONFLICT (stream) DO UPDATE SET
                            owner = excluded.owner,
                            epoch = CASE WHEN l.owner = excluded.owner AND l.expires_at > now() THEN l.epoch ELSE l.epoch + 1 END,
                            expires_at = excluded.expires_at
                        WHERE l.owner = excluded.owner OR l.expires_at <= now()
                        RETURNING epoch
                        """,
                        connection);
                    Add(command, stream);
                    Add(command, owner);
                    Add(command, ttl);
                    return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as long?;
                },
                cancellationToken).ConfigureAwait(false);
            if (epoch is { } acquired)
            {
                return acquired;
            }

            var holder = await ReadLeaseAsync(stream, cancellationToken).ConfigureAwait(false);
            if (holder is { Live: true } live && live.Owner != owner)
            {
                throw new LeaseHeldException(
                    $"the lease on '{stream}' in {Description} is held by '{live.Owner}' until {Format(live.ExpiresAt)} (epoch {live.Epoch}): " +
                    "another worker is syncing this table. Stop it, or wait for its lease to expire.",
                    live.Owner,
                    live.Epoch);
            }

            if (attempt >= AcquireAttempts)
            {
                throw new SyncException(ErrorClass.Transient, $"the lease on '{stream}' in {Description} changed hands {AcquireAttempts} times while acquiring it; retry.");
            }

            // Released or expired between the upsert and the look-up: try again.
        }
    }

    public Task<long?> TakeOverLeaseAsync(string stream, string staleOwner, string owner, TimeSpan ttl, CancellationToken cancellationToken) =>
        WithConnectionAsync(
            $"take over the lease on '{stream}'",
            async connection =>
            {
                await using var command = new NpgsqlCommand(
                    $"UPDATE {_leases} SET owner = $3, epoch = epoch + 1, expires_at = now() + $4 WHERE stream = $1 AND owner = $2 RETURNING epoch",
                    connection);
                Add(command, stream);
                Add(command, staleOwner);
                Add(command, owner);
                Add(command, ttl);
                return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as long?;
            },
            cancellationToken);

    /// <summary>Extends a held lease to <paramref name="ttl"/> from now.</summary>
    /// <exception cref="StateConflictException">the lease has passed to another owner or epoch: stop writing.</exception>
    public Task RenewLeaseAsync(string stream, string owner, long epoch, TimeSpan ttl, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentException.ThrowIfNullOrEmpty(owner);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ttl, TimeSpan.Zero);

        // An expired lease that nobody took is renewed: no other epoch was handed out, so no other writer can exist.
        return WithConnectionAsync(
            $"renew the lease on '{stream}'",
            async connection =>
            {
                await using var command = new NpgsqlCommand($"UPDATE {_leases} SET expires_at = now() + $4 WHERE stream = $1 AND owner = $2 AND epoch = $3", connection);
                Add(command, stream);
                Add(command, owner);
                Add(command, epoch);
                Add(command, ttl);
                if (await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 0)
                {
                    throw await StaleWriterAsync(connection, stream, owner, epoch, cancellationToken).ConfigureAwait(false);
                }
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<long> RaiseEpochAsync(string stream, string owner, long epoch, long floor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentException.ThrowIfNullOrEmpty(owner);
        return WithConnectionAsync(
            $"raise the lease epoch of '{stream}'",
            async connection =>
            {
                await using var command = new NpgsqlCommand($"UPDATE {_leases} SET epoch = greatest(epoch, $4 + 1) WHERE stream = $1 AND owner = $2 AND epoch = $3 RETURNING epoch", connection);
                Add(command, stream);
                Add(command, owner);
                Add(command, epoch);
                Add(command, floor);
                return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as long?
                    ?? throw await StaleWriterAsync(connection, stream, owner, epoch, cancellationToken).ConfigureAwait(false);
            },
            cancellationToken);
    }

    /// <summary>Gives a lease up so that another owner can take it at once; does nothing when it is no longer held.</summary>
    public Task ReleaseLeaseAsync(string stream, string owner, long epoch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentException.ThrowIfNullOrEmpty(owner);

        // Expired rather than deleted: the next owner's epoch must be higher than every epoch handed out before.
        return WithConnectionAsync(
            $"release the lease on '{stream}'",
            async connection =>
            {
                await using var command = new NpgsqlCommand($"UPDATE {_leases} SET expires_at = now() WHERE stream = $1 AND owner = $2 AND epoch = $3 AND expires_at > now()", connection);
                Add(command, stream);
                Add(command, owner);
                Add(command, epoch);
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            },
            cancellationToken);
    }

    /// <summary>
    /// Appends a version only while <paramref name="owner"/> still holds the stream's lease at <paramref name="epoch"/>.
    /// </summary>
    /// <exception cref="StateConflictException">the lease has passed on (a stale writer), or the version exists.</exception>
    public Task AppendFencedAsync(StoredCheckpoint checkpoint, string owner, long epoch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(checkpoint.Version);
        ArgumentException.ThrowIfNullOrEmpty(owner);
        return WithConnectionAsync(
            $"append version {checkpoint.Version} of '{checkpoint.Stream}'",
            async connection =>
            {
                // FOR SHARE holds the lease row until the insert commits: an acquisition racing with it either waits for
                // this checkpoint (and its new owner then reads it) or commits first, and this statement sees the new epoch.
                await using var command = new NpgsqlCommand(
                    $"""
                    INSERT INTO {_checkpoints} (stream, version, payload, saved_at)
                    SELECT $1, $2, $3, $4 FROM {_leases} WHERE stream = $1 AND owner = $5 AND epoch = $6
                    FOR SHARE
                    """,
                    connection);
                AddCheckpoint(command, checkpoint);
                Add(command, owner);
                Add(command, epoch);
                if (await InsertCheckpointAsync(command, checkpoint, cancellationToken).ConfigureAwait(false) == 0)
                {
                    throw await StaleWriterAsync(connection, checkpoint.Stream, owner, epoch, cancellationToken).ConfigureAwait(false);
                }
            },
            cancellationToken);
    }

    /// <summary>Closes the pooled connections.</summary>
    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();

    private async Task InitializeAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        // DDL is transactional here and the version row is written with the tables, so a current version row means every
        // table exists: a role without CREATE rights can then use a store someone else initialized.
        if (await ReadSchemaVersionAsync(connection, cancellationToken).ConfigureAwait(false) == SchemaVersion)
        {
            return;
        }

        var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (transaction.ConfigureAwait(false))
        {
            await using (var command = new NpgsqlCommand("SELECT pg_advisory_xact_lock($1)", connection, transaction))
            {
                Add(command, InitializationLockKey(_schema));
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            var found = await ReadSchemaVersionAsync(connection, cancellationToken).ConfigureAwait(false);
            if (found == SchemaVersion)
            {
                return; // another process initialized while we waited for the lock
            }

            await using (var command = new NpgsqlCommand("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)", connection, transaction))
            {
                Add(command, _schema);
                if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not true)
                {
                    // Only when missing: CREATE SCHEMA IF NOT EXISTS still demands CREATE on the database.
                    await using var create = new NpgsqlCommand($"CREATE SCHEMA {PostgresSql.Quote(_schema)}", connection, transaction);
                    await create.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
            }

            await using (var command = new NpgsqlCommand(CreateTablesSql(), connection, transaction))
            {
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await using (var command = new NpgsqlCommand($"INSERT INTO {_meta} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", connection, transaction))
            {
                Add(command, SchemaVersionKey);
                Add(command, SchemaVersion.ToString(CultureInfo.InvariantCulture));
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The stored layout version, 0 when there is none yet; refuses a newer one.</summary>
    private async Task<int> ReadSchemaVersionAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using (var exists = new NpgsqlCommand("SELECT to_regclass($1) IS NOT NULL", connection))
        {
            Add(exists, _meta);
            if (await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not true)
            {
                return 0;
            }
        }

        await using var command = new NpgsqlCommand($"SELECT value FROM {_meta} WHERE key = $1", connection);
        Add(command, SchemaVersionKey);
        if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not string text)
        {
            return 0;
        }

        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var version) || version > SchemaVersion)
        {
            throw new SyncException(
                ErrorClass.Fatal,
                $"state store {Description} has schema version {text}, newer than this DeltaSync understands ({SchemaVersion}). Upgrade DeltaSync or point state.storage elsewhere.");
        }

        return version;
    }

    private string CreateTablesSql() => $"""
        CREATE TABLE IF NOT EXISTS {_meta} (
            key text COLLATE "C" PRIMARY KEY,
            value text NOT NULL);
        CREATE TABLE IF NOT EXISTS {_checkpoints} (
            stream text COLLATE "C" NOT NULL,
            version bigint NOT NULL,
            payload text NOT NULL,
            saved_at timestamptz NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (stream, version));
        CREATE TABLE IF NOT EXISTS {_deadLetters} (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            stream text COLLATE "C" NOT NULL,
            table_name text NOT NULL,
            record_id text NOT NULL,
            raw_record text NOT NULL,
            reason text NOT NULL,
            error_class text NOT NULL,
            position text NOT NULL,
            failed_at timestamptz NOT NULL,
            attempts integer NOT NULL,
            dedupe_key bytea NOT NULL UNIQUE);
        CREATE INDEX IF NOT EXISTS {PostgresSql.Quote("state_dead_letters_by_stream")} ON {_deadLetters} (stream, failed_at, id);
        CREATE INDEX IF NOT EXISTS {PostgresSql.Quote("state_dead_letters_by_failed_at")} ON {_deadLetters} (failed_at, id);
        CREATE TABLE IF NOT EXISTS {_runs} (
            run_id text COLLATE "C" PRIMARY KEY,
            completed_at timestamptz NOT NULL,
            status text NOT NULL,
            report text NOT NULL);
        CREATE INDEX IF NOT EXISTS {PostgresSql.Quote("state_runs_by_completed_at")} ON {_runs} (completed_at, run_id);
        CREATE TABLE IF NOT EXISTS {_leases} (
            stream text COLLATE "C" PRIMARY KEY,
            owner text NOT NULL,
            epoch bigint NOT NULL,
            expires_at timestamptz NOT NULL);
        """;

    private static void AddCheckpoint(NpgsqlCommand command, StoredCheckpoint checkpoint)
    {
        Add(command, checkpoint.Stream);
        Add(command, checkpoint.Version);
        Add(command, checkpoint.Payload);
        Add(command, ToDateTime(checkpoint.SavedAt));
    }

    private async Task<int> InsertCheckpointAsync(NpgsqlCommand command, StoredCheckpoint checkpoint, CancellationToken cancellationToken)
    {
        try
        {
            return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            throw new StateConflictException(
                $"version {checkpoint.Version} of '{checkpoint.Stream}' already exists in {Description}: another writer appended it. Reload the checkpoint before writing.",
                e);
        }
    }

    private async Task<StateConflictException> StaleWriterAsync(NpgsqlConnection connection, string stream, string owner, long epoch, CancellationToken cancellationToken)
    {
        var now = await ReadLeaseAsync(connection, stream, cancellationToken).ConfigureAwait(false);
        var holder = now switch
        {
            null => "nobody holds it",
            { Live: true } => $"it is held by '{now.Owner}' with epoch {now.Epoch}",
            _ => $"it was last held by '{now.Owner}' with epoch {now.Epoch}",
        };
        return new StateConflictException(
            $"stale writer: epoch {epoch} of '{owner}' no longer holds the lease on '{stream}' in {Description} ({holder}). Stop writing; the new owner continues from the stored checkpoint.");
    }

    private Task<Lease?> ReadLeaseAsync(string stream, CancellationToken cancellationToken) =>
        WithConnectionAsync($"read the lease on '{stream}'", connection => ReadLeaseAsync(connection, stream, cancellationToken), cancellationToken);

    private async Task<Lease?> ReadLeaseAsync(NpgsqlConnection connection, string stream, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand($"SELECT owner, epoch, expires_at, expires_at > now() FROM {_leases} WHERE stream = $1", connection);
        Add(command, stream);
        var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            return await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
                ? new Lease(reader.GetString(0), reader.GetInt64(1), ToInstant(reader.GetDateTime(2)), reader.GetBoolean(3))
                : null;
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> on a pooled connection; connection and server failures become classified
    /// <see cref="SyncException"/>s naming the action and this store (never the password).
    /// </summary>
    private async Task<T> WithConnectionAsync<T>(string action, Func<NpgsqlConnection, Task<T>> work, CancellationToken cancellationToken)
    {
        var connection = await PostgresConnectionFactory.OpenAsync(_dataSource, Role, cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            try
            {
                return await work(connection).ConfigureAwait(false);
            }
            catch (NpgsqlException e)
            {
                throw PostgresConnectionFactory.Classify(e, $"cannot {action} in the state store {Description}");
            }
        }
    }

    private Task WithConnectionAsync(string action, Func<NpgsqlConnection, Task> work, CancellationToken cancellationToken) =>
        WithConnectionAsync(
            action,
            async connection =>
            {
                await work(connection).ConfigureAwait(false);
                return true;
            },
            cancellationToken);

    private static void Add<T>(NpgsqlCommand command, T value) => command.Parameters.Add(new NpgsqlParameter<T> { TypedValue = value });

    private static void Add<T>(NpgsqlCommand command, T value, NpgsqlDbType type) =>
        command.Parameters.Add(new NpgsqlParameter<T> { TypedValue = value, NpgsqlDbType = type });

    /// <summary>A stable advisory-lock key per schema, so stores in different schemas never wait for each other.</summary>
    private static long InitializationLockKey(string schema) =>
        BinaryPrimitives.ReadInt64BigEndian(SHA256.HashData(Encoding.UTF8.GetBytes("DeltaSync.State/" + schema)));

    /// <summary>Races with a creator that does not take our lock: duplicate schema, table, or catalog row.</summary>
    private static bool IsCreationRace(string sqlState) =>
        sqlState is PostgresErrorCodes.DuplicateSchema or PostgresErrorCodes.DuplicateTable or PostgresErrorCodes.DuplicateObject or PostgresErrorCodes.UniqueViolation;

    // DateTime covers years 1–9999; outside that an instant is clamped (Npgsql writes the extremes as ±infinity).
    private static DateTime ToDateTime(Instant instant) =>
        instant <= EarliestDateTime ? DateTime.SpecifyKind(DateTime.MinValue, DateTimeKind.Utc)
        : instant >= LatestDateTime ? DateTime.SpecifyKind(DateTime.MaxValue, DateTimeKind.Utc)
        : instant.ToDateTimeUtc();

    private static Instant ToInstant(DateTime value) => Instant.FromDateTimeUtc(DateTime.SpecifyKind(value, DateTimeKind.Utc));

    private static string Format(Instant instant) => InstantPattern.ExtendedIso.Format(instant);

    private sealed record Lease(string Owner, long Epoch, Instant ExpiresAt, bool Live);
}
