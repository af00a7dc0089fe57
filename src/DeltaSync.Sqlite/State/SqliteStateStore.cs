using System.Security.Cryptography;
using System.Text;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using Microsoft.Data.Sqlite;
using NodaTime;
using NodaTime.Text;

namespace DeltaSync.Sqlite.State;

/// <summary>
/// Sync state in one SQLite file, the embedded default: WAL journal so readers never block the writer,
/// <c>synchronous=FULL</c> so a committed checkpoint survives power loss, and the primary key
/// <c>(stream, version)</c> to turn two writers racing for one version into a <see cref="StateConflictException"/>.
/// </summary>
public sealed partial class SqliteStateStore : IStateStore, ILeaseStore
{
    /// <summary>The layout this code reads and writes, kept in <c>meta.schema_version</c>.</summary>
    private const int SchemaVersion = 1;

    private const int SqliteConstraintPrimaryKey = 1555; // SQLITE_CONSTRAINT_PRIMARYKEY

    // ISO-8601 with a fixed nine-digit fraction: ExtendedIso drops trailing zeros, and then text order ("…00.5Z" < "…00Z")
    // is not time order. ExtendedIso still parses these.
    private static readonly InstantPattern SortableIso = InstantPattern.CreateWithInvariantCulture("uuuu'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffff'Z'");

    private const string Schema = """
        CREATE TABLE IF NOT EXISTS checkpoints (
            stream TEXT NOT NULL,
            version INTEGER NOT NULL,
            payload TEXT NOT NULL,
            saved_at TEXT NOT NULL,
            PRIMARY KEY (stream, version));
        CREATE TABLE IF NOT EXISTS dead_letters (
            id INTEGER PRIMARY KEY,
            stream TEXT NOT NULL,
            table_name TEXT NOT NULL,
            record_id TEXT NOT NULL,
            raw_record TEXT NOT NULL,
            raw_hash TEXT NOT NULL,
            reason TEXT NOT NULL,
            error_class TEXT NOT NULL,
            position TEXT NOT NULL,
            failed_at TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            UNIQUE (stream, record_id, raw_hash));
        CREATE INDEX IF NOT EXISTS dead_letters_by_stream ON dead_letters (stream, failed_at, id);
        CREATE TABLE IF NOT EXISTS runs (
            run_id TEXT PRIMARY KEY,
            completed_at TEXT NOT NULL,
            status TEXT NOT NULL,
            report TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS runs_by_completed_at ON runs (completed_at, run_id);
        CREATE TABLE IF NOT EXISTS conflict_log (
            seq INTEGER PRIMARY KEY,
            entry_id TEXT NOT NULL UNIQUE,
            conflict_id TEXT NOT NULL,
            stream TEXT NOT NULL,
            kind TEXT NOT NULL,
            logged_at TEXT NOT NULL,
            entry TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS conflict_log_by_conflict ON conflict_log (conflict_id, seq);
        CREATE TABLE IF NOT EXISTS conflict_reviews (
            conflict_id TEXT PRIMARY KEY,
            stream TEXT NOT NULL,
            table_name TEXT NOT NULL,
            record_id TEXT NOT NULL,
            record_key TEXT NOT NULL,
            detected_at TEXT NOT NULL,
            record TEXT NOT NULL);
        INSERT INTO meta (key, value) VALUES ('schema_version', $schema_version) ON CONFLICT (key) DO NOTHING;
        """;

    private const string DeadLetterColumns = "stream, table_name, record_id, raw_record, reason, error_class, position, failed_at, attempts";

    private readonly string _path;
    private readonly string _fullPath;
    private readonly string _connectionString;

    /// <param name="databasePath">The database file; it and its folder are created by <see cref="InitializeAsync"/>.</param>
    public SqliteStateStore(string databasePath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(databasePath);
        _path = databasePath;
        _fullPath = Path.GetFullPath(databasePath);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = _fullPath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
        }.ToString();
    }

    public string Description => $"sqlite:{_path}";

    /// <summary>The tables and indexes <see cref="Schema"/> creates (and <c>meta</c>).</summary>
    private static readonly string[] SchemaObjects =
    [
        "meta",
        .. Schema.Split("IF NOT EXISTS ", StringSplitOptions.None).Skip(1).Select(rest => rest[..rest.IndexOfAny([' ', '(', '\n'])]),
    ];

    /// <summary>Whether the database holds every object of <see cref="Schema"/> at <see cref="SchemaVersion"/>: read-only.</summary>
    private static async Task<bool> IsCurrentAsync(SqliteConnection connection, CancellationToken cancellationToken)
    {
        await using var probe = connection.CreateCommand();
        probe.CommandText = $"SELECT count(*) FROM sqlite_master WHERE name IN ({string.Join(", ", SchemaObjects.Select((_, i) => "$o" + i))})";
        for (var i = 0; i < SchemaObjects.Length; i++)
        {
            probe.Parameters.AddWithValue("$o" + i, SchemaObjects[i]);
        }

        if (Convert.ToInt64(await probe.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) != SchemaObjects.Length)
        {
            return false;
        }

        await using var version = connection.CreateCommand();
        version.CommandText = "SELECT value FROM meta WHERE key = 'schema_version'";
        return await version.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is string text
            && text == SchemaVersion.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        var folder = Path.GetDirectoryName(_fullPath);
        if (!string.IsNullOrEmpty(folder))
        {
            Directory.CreateDirectory(folder);
        }

        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            // journal_mode is a property of the database file, so setting it once here lasts for every later connection.
            await ExecuteAsync(connection, "PRAGMA journal_mode = WAL", cancellationToken).ConfigureAwait(false);
            if (await IsCurrentAsync(connection, cancellationToken).ConfigureAwait(false))
            {
                // Every table and index is there at this version: no write transaction on every start.
                return;
            }

            var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                await ExecuteAsync(connection, "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)", cancellationToken).ConfigureAwait(false);
                await using (var read = connection.CreateCommand())
                {
                    read.CommandText = "SELECT value FROM meta WHERE key = 'schema_version'";
                    var found = await read.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                    if (found is string text && (!int.TryParse(text, out var version) || version > SchemaVersion))
                    {
                        throw new SyncException(
                            ErrorClass.Fatal,
                            $"state database '{_path}' has schema version {text}, newer than this DeltaSync understands ({SchemaVersion}). Upgrade DeltaSync or point state.storage elsewhere.");
                    }
                }

                await using (var create = connection.CreateCommand())
                {
                    create.CommandText = Schema;
                    create.Parameters.AddWithValue("$schema_version", SchemaVersion.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    await create.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public async Task<IReadOnlyList<StoredCheckpoint>> ReadHistoryAsync(string stream, int limit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT version, payload, saved_at FROM checkpoints WHERE stream = $stream ORDER BY version DESC LIMIT $limit";
            command.Parameters.AddWithValue("$stream", stream);
            command.Parameters.AddWithValue("$limit", limit);
            var history = new List<StoredCheckpoint>();
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    // The payload is returned whatever it holds: judging it is CheckpointHistory's job.
                    var payload = reader.IsDBNull(1) ? "" : reader.GetString(1);
                    history.Add(new StoredCheckpoint(stream, reader.GetInt64(0), payload, ParseSavedAt(reader.IsDBNull(2) ? null : reader.GetString(2))));
                }
            }

            return history;
        }
    }

    public async Task AppendAsync(StoredCheckpoint checkpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(checkpoint.Version);
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await InsertCheckpointAsync(connection, null, checkpoint, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task InsertCheckpointAsync(SqliteConnection connection, SqliteTransaction? transaction, StoredCheckpoint checkpoint, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "INSERT INTO checkpoints (stream, version, payload, saved_at) VALUES ($stream, $version, $payload, $saved_at)";
        command.Parameters.AddWithValue("$stream", checkpoint.Stream);
        command.Parameters.AddWithValue("$version", checkpoint.Version);
        command.Parameters.AddWithValue("$payload", checkpoint.Payload);
        command.Parameters.AddWithValue("$saved_at", SortableIso.Format(checkpoint.SavedAt));
        try
        {
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (SqliteException e) when (e.SqliteExtendedErrorCode == SqliteConstraintPrimaryKey)
        {
            throw new StateConflictException(
                $"version {checkpoint.Version} of '{checkpoint.Stream}' already exists in {Description}: another writer appended it. Reload the checkpoint before writing.",
                e);
        }
    }

    public async Task<IReadOnlyList<string>> ListStreamsAsync(CancellationToken cancellationToken)
    {
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT DISTINCT stream FROM checkpoints ORDER BY stream";
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
        }
    }

    public Task DeleteStreamAsync(string stream, CancellationToken cancellationToken) => TrimHistoryAsync(stream, long.MaxValue, cancellationToken);

    public async Task TrimHistoryAsync(string stream, long version, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "DELETE FROM checkpoints WHERE stream = $stream AND version < $version";
            command.Parameters.AddWithValue("$stream", stream);
            command.Parameters.AddWithValue("$version", version);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public Task AddDeadLettersAsync(IReadOnlyList<DeadLetter> deadLetters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(deadLetters);
        // The upsert makes "same record, same raw content" one row.
        return ExecuteEachAsync(
            $"""
            INSERT INTO dead_letters ({DeadLetterColumns}, raw_hash)
            VALUES ($stream, $table_name, $record_id, $raw_record, $reason, $error_class, $position, $failed_at, $attempts, $raw_hash)
            ON CONFLICT (stream, record_id, raw_hash) DO UPDATE SET attempts = dead_letters.attempts + excluded.attempts,
                reason = excluded.reason, error_class = excluded.error_class, failed_at = max(dead_letters.failed_at, excluded.failed_at)
            """,
            deadLetters,
            letter =>
            [
                letter.Stream,
                letter.Table,
                letter.RecordId,
                letter.RawRecord,
                letter.Reason,
                letter.ErrorClass.ToString(),
                letter.Position.ToString(),
                SortableIso.Format(letter.FailedAt),
                (long)Math.Max(1, letter.Attempts),
                Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(letter.RawRecord))),
            ],
            cancellationToken);
    }

    /// <summary>The <c>$name</c> parameters of <paramref name="sql"/> (lower-case letters and '_'), in order of first appearance.</summary>
    private static List<string> ParameterNames(string sql)
    {
        var names = new List<string>();
        for (var i = 0; i < sql.Length; i++)
        {
            if (sql[i] != '$')
            {
                continue;
            }

            var end = i + 1;
            while (end < sql.Length && (char.IsAsciiLetterLower(sql[end]) || sql[end] == '_'))
            {
                end++;
            }

            if (end > i + 1 && !names.Contains(sql[i..end]))
            {
                names.Add(sql[i..end]);
            }

            i = end - 1;
        }

        return names;
    }

    /// <summary>
    /// Runs <paramref name="sql"/> once per row in one transaction, prepared once; its <c>$name</c> parameters, in
    /// order of first appearance, take <paramref name="values"/> of each row.
    /// </summary>
    private async Task ExecuteEachAsync<T>(string sql, IReadOnlyList<T> rows, Func<T, object?[]> values, CancellationToken cancellationToken)
    {
        if (rows.Count == 0)
        {
            return;
        }

        var names = ParameterNames(sql);
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                await using var command = connection.CreateCommand();
                command.CommandText = sql;
                // Untyped: each value binds as its own storage class (text, integer).
                var parameters = names.Select(n => command.Parameters.Add(new SqliteParameter { ParameterName = n })).ToList();
                await command.PrepareAsync(cancellationToken).ConfigureAwait(false);
                foreach (var row in rows)
                {
                    var rowValues = values(row);
                    for (var i = 0; i < parameters.Count; i++)
                    {
                        parameters[i].Value = rowValues[i] ?? DBNull.Value;
                    }

                    await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public async Task<int> RemoveDeadLettersAsync(IReadOnlyList<DeadLetter> deadLetters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(deadLetters);
        if (deadLetters.Count == 0)
        {
            return 0;
        }

        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                await using var command = connection.CreateCommand();
                command.CommandText = "DELETE FROM dead_letters WHERE stream = $stream AND record_id = $record_id AND raw_hash = $raw_hash";
                var stream = command.Parameters.Add("$stream", SqliteType.Text);
                var recordId = command.Parameters.Add("$record_id", SqliteType.Text);
                var rawHash = command.Parameters.Add("$raw_hash", SqliteType.Text);
                await command.PrepareAsync(cancellationToken).ConfigureAwait(false);
                var removed = 0;
                foreach (var letter in deadLetters)
                {
                    stream.Value = letter.Stream;
                    recordId.Value = letter.RecordId;
                    rawHash.Value = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(letter.RawRecord)));
                    removed += await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                return removed;
            }
        }
    }

    public async Task<IReadOnlyList<DeadLetter>> ReadDeadLettersAsync(string? stream, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = connection.CreateCommand();
            if (stream is null)
            {
                command.CommandText = $"SELECT {DeadLetterColumns} FROM dead_letters ORDER BY failed_at, id LIMIT $limit";
            }
            else
            {
                command.CommandText = $"SELECT {DeadLetterColumns} FROM dead_letters WHERE stream = $stream ORDER BY failed_at, id LIMIT $limit";
                command.Parameters.AddWithValue("$stream", stream);
            }

            command.Parameters.AddWithValue("$limit", limit);
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
                        InstantPattern.ExtendedIso.Parse(reader.GetString(7)).GetValueOrThrow(),
                        reader.GetInt32(8)));
                }
            }

            return letters;
        }
    }

    public async Task AppendRunAsync(RunRecord run, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            // One transaction (one commit) for the summary and the pruning of the oldest beyond RunRecord.Kept.
            var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                await using var command = connection.CreateCommand();
                command.CommandText = """
                    INSERT INTO runs (run_id, completed_at, status, report) VALUES ($run_id, $completed_at, $status, $report)
                    ON CONFLICT (run_id) DO UPDATE SET completed_at = excluded.completed_at, status = excluded.status, report = excluded.report;
                    DELETE FROM runs WHERE run_id IN (SELECT run_id FROM runs ORDER BY completed_at DESC, run_id DESC LIMIT -1 OFFSET $kept);
                    """;
                command.Parameters.AddWithValue("$run_id", run.RunId);
                command.Parameters.AddWithValue("$completed_at", SortableIso.Format(run.CompletedAt));
                command.Parameters.AddWithValue("$status", run.Status);
                command.Parameters.AddWithValue("$report", run.ReportJson);
                command.Parameters.AddWithValue("$kept", RunRecord.Kept);
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public Task<IReadOnlyList<string>> ReadRunIdsAsync(int limit, CancellationToken cancellationToken) =>
        ReadNewestRunsAsync("run_id", limit, reader => reader.GetString(0), cancellationToken);

    public Task<IReadOnlyList<RunRecord>> ReadRunsAsync(int limit, CancellationToken cancellationToken) =>
        ReadNewestRunsAsync(
            "run_id, completed_at, status, report",
            limit,
            reader => new RunRecord(reader.GetString(0), InstantPattern.ExtendedIso.Parse(reader.GetString(1)).GetValueOrThrow(), reader.GetString(2), reader.GetString(3)),
            cancellationToken);

    /// <summary><paramref name="columns"/> of the newest <paramref name="limit"/> runs, newest first.</summary>
    private async Task<IReadOnlyList<T>> ReadNewestRunsAsync<T>(string columns, int limit, Func<SqliteDataReader, T> read, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = connection.CreateCommand();
            command.CommandText = $"SELECT {columns} FROM runs ORDER BY completed_at DESC, run_id DESC LIMIT $limit";
            command.Parameters.AddWithValue("$limit", limit);
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
        }
    }

    /// <summary>Closes this store's idle pooled connections, so the file is released.</summary>
    public ValueTask DisposeAsync()
    {
        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// A pooled connection with this store's per-connection settings (journal_mode, by contrast, lives in the file).
    /// </summary>
    private async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, "PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000", cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static async Task ExecuteAsync(SqliteConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The saved-at column is bookkeeping; the checkpoint's own content is what gets validated. A damaged value must not
    /// make the stream unloadable, so it reads as <see cref="Instant.MinValue"/>.
    /// </summary>
    private static Instant ParseSavedAt(string? text)
    {
        if (text is null)
        {
            return Instant.MinValue;
        }

        var parsed = InstantPattern.ExtendedIso.Parse(text);
        return parsed.Success ? parsed.Value : Instant.MinValue;
    }
}
