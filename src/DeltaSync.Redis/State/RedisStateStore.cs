using System.Globalization;
using System.Text.Json;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using NodaTime;
using NodaTime.Text;
using StackExchange.Redis;
using StackExchange.Redis.KeyspaceIsolation;

namespace DeltaSync.Redis.State;

/// <summary>
/// Sync state in a Redis database, every key under one prefix (default <c>deltasync:</c>). Checks and writes that
/// must not interleave with another writer's run as Lua scripts (<see cref="RedisScripts"/>), so two writers racing
/// for one version get a <see cref="StateConflictException"/>, and a stale worker's checkpoint is refused.
/// </summary>
/// <remarks>
/// <para>Layout (after the prefix):</para>
/// <list type="table">
/// <item><term><c>meta</c></term><description>hash: <c>schema_version</c>.</description></item>
/// <item><term><c>streams</c></term><description>set of the streams that have checkpoints.</description></item>
/// <item><term><c>checkpoints:&lt;stream&gt;</c></term><description>sorted set, score = version, member =
/// <c>version \n saved_at \n payload</c>.</description></item>
/// <item><term><c>lease:&lt;stream&gt;</c></term><description>hash: owner, epoch, expires_at_ms (server clock); kept
/// across a reset so epochs only grow.</description></item>
/// <item><term><c>dead_letters</c>, <c>dead_letters:failure</c>, <c>dead_letters:attempts</c>,
/// <c>dead_letters:rank</c></term><description>hashes by dedupe key: the record, the latest reason and error class, the
/// attempt count, and the entry's place in the order.</description></item>
/// <item><term><c>dead_letters:order</c>, <c>dead_letters:order:&lt;stream&gt;</c></term><description>sorted sets
/// read by lexical order: <c>failed_at | id | dedupe key</c>.</description></item>
/// <item><term><c>runs</c>, <c>runs:rank</c>, <c>runs:order</c></term><description>run summaries by id, and their
/// order: <c>completed_at | run id</c>.</description></item>
/// </list>
/// <para>Durability is the server's: with neither RDB snapshots nor the append-only file, a Redis restart loses the
/// state. Use <c>appendonly yes</c> (and <c>appendfsync everysec</c> or <c>always</c>) for a state store.</para>
/// </remarks>
public sealed partial class RedisStateStore : IStateStore, ILeaseStore
{
    /// <summary>The layout this code reads and writes, kept in <c>meta.schema_version</c>.</summary>
    private const int SchemaVersion = 1;

    /// <summary>Versions are sorted-set scores (doubles): integers are exact up to 2^53.</summary>
    private const long MaxVersion = 1L << 53;

    private const string DeadLetterOrder = "dead_letters:order";
    private static readonly RedisKey Meta = "meta";
    private static readonly RedisKey Streams = "streams";
    private static readonly RedisKey Letters = "dead_letters";
    private static readonly RedisKey Failures = "dead_letters:failure";
    private static readonly RedisKey Attempts = "dead_letters:attempts";
    private static readonly RedisKey Ranks = "dead_letters:rank";
    private static readonly RedisKey NextLetterId = "dead_letters:next";
    private static readonly RedisKey Runs = "runs";
    private static readonly RedisKey RunRanks = "runs:rank";
    private static readonly RedisKey RunOrder = "runs:order";

    // ISO-8601 with a fixed nine-digit fraction, so text order is time order (ExtendedIso drops trailing zeros).
    private static readonly InstantPattern SortableIso = InstantPattern.CreateWithInvariantCulture("uuuu'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffff'Z'");

    private readonly RedisConnectionSettings _settings;
    private readonly SemaphoreSlim _connecting = new(1, 1);
    private ConnectionMultiplexer? _connection;
    private IDatabase? _database;

    /// <param name="connection">A <c>redis://</c> URI, <c>host:port</c>, or a StackExchange.Redis configuration string (see <see cref="RedisConnectionFactory"/>).</param>
    public RedisStateStore(string connection)
        : this(RedisConnectionFactory.Parse(connection))
    {
    }

    public RedisStateStore(RedisConnectionSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        _settings = settings;
    }

    /// <summary>Scheme, server, database and key prefix; never credentials.</summary>
    public string Description => _settings.Description;

    /// <summary>Connects and records the layout version; refuses state written by a newer DeltaSync.</summary>
    public Task InitializeAsync(CancellationToken cancellationToken) =>
        RunAsync(
            "initialize",
            async database =>
            {
                await database.HashSetAsync(Meta, "schema_version", SchemaVersion, When.NotExists).ConfigureAwait(false);
                var found = (string?)await database.HashGetAsync(Meta, "schema_version").ConfigureAwait(false);
                if (!int.TryParse(found, NumberStyles.None, CultureInfo.InvariantCulture, out var version) || version > SchemaVersion)
                {
                    throw new SyncException(
                        ErrorClass.Fatal,
                        $"state store {Description} has schema version {found}, newer than this DeltaSync understands ({SchemaVersion}). Upgrade DeltaSync or point state.storage elsewhere.");
                }

                return true;
            },
            cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<StoredCheckpoint>> ReadHistoryAsync(string stream, int limit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        return RunAsync<IReadOnlyList<StoredCheckpoint>>(
            $"read the history of '{stream}'",
            async database =>
            {
                if (limit == 0)
                {
                    return [];
                }

                var members = await database.SortedSetRangeByScoreAsync(Checkpoints(stream), order: Order.Descending, take: limit).ConfigureAwait(false);
                return members.Select(m => DecodeCheckpoint(stream, m!)).ToList();
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task AppendAsync(StoredCheckpoint checkpoint, CancellationToken cancellationToken)
    {
        CheckVersion(checkpoint);
        return RunAsync(
            $"append version {checkpoint.Version} of '{checkpoint.Stream}'",
            async database =>
            {
                var result = await database.ScriptEvaluateAsync(
                    RedisScripts.Append,
                    [Checkpoints(checkpoint.Stream), Streams],
                    [checkpoint.Version, EncodeCheckpoint(checkpoint), checkpoint.Stream]).ConfigureAwait(false);
                if ((long)result == 0)
                {
                    throw VersionExists(checkpoint);
                }

                return true;
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<string>> ListStreamsAsync(CancellationToken cancellationToken) =>
        RunAsync<IReadOnlyList<string>>(
            "list the streams",
            async database =>
            {
                var members = await database.SetMembersAsync(Streams).ConfigureAwait(false);
                return members.Select(m => (string)m!).Order(StringComparer.Ordinal).ToList();
            },
            cancellationToken);

    /// <inheritdoc/>
    public Task DeleteStreamAsync(string stream, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);

        // The lease stays: its epoch must keep growing across a reset, or a writer fenced off before the reset could
        // match a later epoch.
        return RunAsync(
            $"delete the history of '{stream}'",
            database => database.ScriptEvaluateAsync(RedisScripts.DeleteStream, [Checkpoints(stream), Streams], [stream]),
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task TrimHistoryAsync(string stream, long version, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        // Versions are the sorted set's scores.
        return RunAsync(
            $"trim the history of '{stream}'",
            database => database.SortedSetRemoveRangeByScoreAsync(Checkpoints(stream), double.NegativeInfinity, version, Exclude.Stop),
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

        var keys = new List<RedisKey>(6 + deadLetters.Count) { Letters, Failures, Attempts, Ranks, NextLetterId, DeadLetterOrder };
        var values = new List<RedisValue>(5 * deadLetters.Count);
        foreach (var letter in deadLetters)
        {
            keys.Add(DeadLetterOrder + ":" + letter.Stream);
            values.Add(DedupeKey(letter));
            values.Add(JsonSerializer.Serialize(new LetterRecord(letter.Stream, letter.Table, letter.RecordId, letter.RawRecord, letter.Position.ToString())));
            values.Add(JsonSerializer.Serialize(new LetterFailure(letter.Reason, letter.ErrorClass.ToString())));
            values.Add(Math.Max(1, letter.Attempts));
            values.Add(SortableIso.Format(letter.FailedAt));
        }

        // One script for the batch: equal letters in it are merged in order, exactly as if added one after another.
        return RunAsync(
            $"add {deadLetters.Count} dead letters",
            database => database.ScriptEvaluateAsync(RedisScripts.AddDeadLetters, [.. keys], [.. values]),
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

        var keys = new List<RedisKey>(5 + deadLetters.Count) { Letters, Failures, Attempts, Ranks, DeadLetterOrder };
        keys.AddRange(deadLetters.Select(d => (RedisKey)(DeadLetterOrder + ":" + d.Stream)));
        var values = deadLetters.Select(d => (RedisValue)DedupeKey(d)).ToArray();
        return RunAsync(
            $"remove {deadLetters.Count} dead letters",
            async database => (int)await database.ScriptEvaluateAsync(RedisScripts.RemoveDeadLetters, [.. keys], values).ConfigureAwait(false),
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<DeadLetter>> ReadDeadLettersAsync(string? stream, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        return RunAsync<IReadOnlyList<DeadLetter>>(
            "read the dead letters",
            async database =>
            {
                if (limit == 0)
                {
                    return [];
                }

                var order = stream is null ? DeadLetterOrder : DeadLetterOrder + ":" + stream;
                var rows = (RedisResult[])(await database.ScriptEvaluateAsync(RedisScripts.ReadDeadLetters, [order, Letters, Failures, Attempts], [limit]).ConfigureAwait(false))!;
                var letters = new List<DeadLetter>(rows.Length / 4);
                for (var i = 0; i + 3 < rows.Length; i += 4)
                {
                    var record = JsonSerializer.Deserialize<LetterRecord>((string)rows[i]!)!;
                    var failure = JsonSerializer.Deserialize<LetterFailure>((string)rows[i + 1]!)!;
                    letters.Add(new DeadLetter(
                        record.Stream,
                        record.Table,
                        record.RecordId,
                        record.RawRecord,
                        failure.Reason,
                        Enum.Parse<ErrorClass>(failure.ErrorClass, ignoreCase: true),
                        Position.Parse(record.Position),
                        InstantPattern.ExtendedIso.Parse((string)rows[i + 3]!).GetValueOrThrow(),
                        (int)rows[i + 2]));
                }

                return letters;
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task AppendRunAsync(RunRecord run, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        var json = JsonSerializer.Serialize(new StoredRun(run.RunId, InstantPattern.ExtendedIso.Format(run.CompletedAt), run.Status, run.ReportJson));
        return RunAsync(
            $"store run '{run.RunId}'",
            database => database.ScriptEvaluateAsync(
                RedisScripts.AppendRun,
                [Runs, RunRanks, RunOrder],
                [run.RunId, SortableIso.Format(run.CompletedAt) + "|" + run.RunId, json, RunRecord.Kept]),
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<string>> ReadRunIdsAsync(int limit, CancellationToken cancellationToken) =>
        ReadNewestRunsAsync(
            limit,
            async database =>
            {
                // The order index holds "completed_at|run_id": the ids without touching the stored reports.
                var ranks = await database.SortedSetRangeByValueAsync(RunOrder, order: Order.Descending, skip: 0, take: limit).ConfigureAwait(false);
                return ranks.Select(r => (string)r!).Select(r => r[(r.IndexOf('|', StringComparison.Ordinal) + 1)..]).ToList();
            },
            cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<RunRecord>> ReadRunsAsync(int limit, CancellationToken cancellationToken) =>
        ReadNewestRunsAsync(
            limit,
            async database =>
            {
                var rows = (RedisResult[])(await database.ScriptEvaluateAsync(RedisScripts.ReadRuns, [Runs, RunOrder], [limit]).ConfigureAwait(false))!;
                return rows
                    .Select(r => JsonSerializer.Deserialize<StoredRun>((string)r!)!)
                    .Select(r => new RunRecord(r.RunId, InstantPattern.ExtendedIso.Parse(r.CompletedAt).GetValueOrThrow(), r.Status, r.ReportJson))
                    .ToList();
            },
            cancellationToken);

    /// <summary>The newest <paramref name="limit"/> runs as <paramref name="read"/> gives them (none for a limit of 0).</summary>
    private Task<IReadOnlyList<T>> ReadNewestRunsAsync<T>(int limit, Func<IDatabase, Task<List<T>>> read, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        return RunAsync<IReadOnlyList<T>>(
            "read the runs",
            async database => limit == 0 ? [] : await read(database).ConfigureAwait(false),
            cancellationToken);
    }

    /// <summary>Closes the connection.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
            _connection = null;
            _database = null;
        }

        _connecting.Dispose();
    }

    private static RedisKey Checkpoints(string stream) => "checkpoints:" + stream;

    private static RedisKey Lease(string stream) => "lease:" + stream;

    private static string DedupeKey(DeadLetter letter) => Convert.ToHexStringLower(letter.DedupeKey());

    private static void CheckVersion(StoredCheckpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(checkpoint.Version);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(checkpoint.Version, MaxVersion);
    }

    /// <summary>The version first makes every member distinct, even two versions with the same payload and time.</summary>
    private static string EncodeCheckpoint(StoredCheckpoint checkpoint) => string.Create(
        CultureInfo.InvariantCulture,
        $"{checkpoint.Version}\n{InstantPattern.ExtendedIso.Format(checkpoint.SavedAt)}\n{checkpoint.Payload}");

    /// <summary>
    /// The payload is returned whatever it holds (judging it is CheckpointHistory's job); a damaged saved-at reads as
    /// <see cref="Instant.MinValue"/>, so it cannot make the stream unloadable.
    /// </summary>
    private static StoredCheckpoint DecodeCheckpoint(string stream, string member)
    {
        var first = member.IndexOf('\n', StringComparison.Ordinal);
        var second = first < 0 ? -1 : member.IndexOf('\n', first + 1);
        var version = long.Parse(first < 0 ? member : member[..first], NumberStyles.None, CultureInfo.InvariantCulture);
        if (second < 0)
        {
            return new StoredCheckpoint(stream, version, "", Instant.MinValue);
        }

        var savedAt = InstantPattern.ExtendedIso.Parse(member[(first + 1)..second]);
        return new StoredCheckpoint(stream, version, member[(second + 1)..], savedAt.Success ? savedAt.Value : Instant.MinValue);
    }

    private StateConflictException VersionExists(StoredCheckpoint checkpoint) =>
        new($"version {checkpoint.Version} of '{checkpoint.Stream}' already exists in {Description}: another writer appended it. Reload the checkpoint before writing.");

    /// <summary>The connection, opened on first use (and again after a failed attempt).</summary>
    private async Task<IDatabase> DatabaseAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _database) is { } ready)
        {
            return ready;
        }

        await _connecting.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_database is null)
            {
                _connection = await RedisConnectionFactory.ConnectAsync(_settings, cancellationToken).ConfigureAwait(false);
                Volatile.Write(ref _database, _connection.GetDatabase(_settings.Database).WithKeyPrefix(_settings.Prefix));
            }

            return _database!;
        }
        finally
        {
            _connecting.Release();
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> on the connection; connection, timeout and server failures become classified
    /// <see cref="SyncException"/>s naming the action and this store (never the password).
    /// </summary>
    private async Task<T> RunAsync<T>(string action, Func<IDatabase, Task<T>> work, CancellationToken cancellationToken)
    {
        var database = await DatabaseAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await work(database).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            throw RedisConnectionFactory.Classify(e, _settings, $"cannot {action} in the state store {Description}");
        }
    }

    private Task RunAsync(string action, Func<IDatabase, Task> work, CancellationToken cancellationToken) =>
        RunAsync(
            action,
            async database =>
            {
                await work(database).ConfigureAwait(false);
                return true;
            },
            cancellationToken);

    internal sealed record LetterRecord(string Stream, string Table, string RecordId, string RawRecord, string Position);

    internal sealed record LetterFailure(string Reason, string ErrorClass);

    internal sealed record StoredRun(string RunId, string CompletedAt, string Status, string ReportJson);
}
