using DeltaSync.Core.Model;

namespace DeltaSync.Core.State;

/// <summary>
/// Where sync state lives: checkpoint histories, the dead-letter queue and run summaries. Stores are dumb and durable;
/// checksums, validation, repair and rollback are decided once in <see cref="CheckpointHistory"/> for every store.
/// </summary>
public interface IStateStore : IAsyncDisposable
{
    /// <summary>Where the state is, for messages (never with secrets).</summary>
    string Description { get; }

    /// <summary>Creates the store's tables or folders when missing.</summary>
    Task InitializeAsync(CancellationToken cancellationToken);

    /// <summary>The newest <paramref name="limit"/> checkpoints of a stream, newest first, valid or not.</summary>
    Task<IReadOnlyList<StoredCheckpoint>> ReadHistoryAsync(string stream, int limit, CancellationToken cancellationToken);

    /// <summary>Appends a version. Throws <see cref="StateConflictException"/> when that version already exists.</summary>
    Task AppendAsync(StoredCheckpoint checkpoint, CancellationToken cancellationToken);

    /// <summary>Every stream that has at least one checkpoint.</summary>
    Task<IReadOnlyList<string>> ListStreamsAsync(CancellationToken cancellationToken);

    /// <summary>Removes a stream's whole history (state reset).</summary>
    Task DeleteStreamAsync(string stream, CancellationToken cancellationToken);

    /// <summary>
    /// Removes a stream's versions below <paramref name="version"/> (history retention: <see cref="CheckpointHistory"/>
    /// keeps the newest <see cref="CheckpointHistory.Kept"/>); the versions from it on are untouched.
    /// </summary>
    Task TrimHistoryAsync(string stream, long version, CancellationToken cancellationToken);

    /// <summary>Adds dead letters; an entry equal to one already queued (same stream, record and raw record) increases its attempt count and takes the newer reason, error class and failure time.</summary>
    Task AddDeadLettersAsync(IReadOnlyList<DeadLetter> deadLetters, CancellationToken cancellationToken);

    /// <summary>Dead letters, oldest first; all streams when <paramref name="stream"/> is null.</summary>
    Task<IReadOnlyList<DeadLetter>> ReadDeadLettersAsync(string? stream, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Removes queued entries (matched by <see cref="DeadLetter.DedupeKey"/>: a replayed record that now synced, or a
    /// purge). Entries not in the queue are ignored; returns how many were removed.
    /// </summary>
    Task<int> RemoveDeadLettersAsync(IReadOnlyList<DeadLetter> deadLetters, CancellationToken cancellationToken);

    /// <summary>
    /// Appends to the conflict log (append-only: entries are never changed or removed). An entry whose
    /// <see cref="ConflictLogRecord.EntryId"/> is already logged is skipped.
    /// </summary>
    Task AppendConflictLogAsync(IReadOnlyList<ConflictLogRecord> entries, CancellationToken cancellationToken);

    /// <summary>Conflict log entries in the order they were appended; only <paramref name="conflictId"/>'s when given.</summary>
    Task<IReadOnlyList<ConflictLogRecord>> ReadConflictLogAsync(string? conflictId, int limit, CancellationToken cancellationToken);

    /// <summary>Adds conflicts to the review queue; one already queued (same conflict id) is replaced.</summary>
    Task AddConflictReviewsAsync(IReadOnlyList<ConflictReview> reviews, CancellationToken cancellationToken);

    /// <summary>The review queue, oldest detection first; only <paramref name="conflictId"/> when given.</summary>
    Task<IReadOnlyList<ConflictReview>> ReadConflictReviewsAsync(string? conflictId, int limit, CancellationToken cancellationToken);

    /// <summary>Removes a conflict from the review queue (it was resolved); false when it was not queued.</summary>
    Task<bool> RemoveConflictReviewAsync(string conflictId, CancellationToken cancellationToken);

    /// <summary>
    /// Stores a run summary (JSON) for <c>status</c>, and forgets the oldest beyond the newest
    /// <see cref="RunRecord.Kept"/> (a report lists every conflict of its run, so the history would otherwise grow by
    /// megabytes a run).
    /// </summary>
    Task AppendRunAsync(RunRecord run, CancellationToken cancellationToken);

    /// <summary>The newest runs, newest first.</summary>
    Task<IReadOnlyList<RunRecord>> ReadRunsAsync(int limit, CancellationToken cancellationToken);

    /// <summary>
    /// The ids of the newest runs, newest first, without their reports (what every run reads at its start to tell
    /// a finished run from an interrupted one; a report that lists thousands of conflicts runs to megabytes).
    /// </summary>
    async Task<IReadOnlyList<string>> ReadRunIdsAsync(int limit, CancellationToken cancellationToken) =>
        (await ReadRunsAsync(limit, cancellationToken).ConfigureAwait(false)).Select(r => r.RunId).ToList();
}

/// <summary>A stored summary of one run: its id, when it ended and its report as JSON.</summary>
public sealed record RunRecord(string RunId, NodaTime.Instant CompletedAt, string Status, string ReportJson)
{
    /// <summary>How many of the newest runs a state store keeps (each run's report also goes to its own file).</summary>
    public const int Kept = 1000;
}

/// <summary>A checkpoint version was written concurrently by another writer.</summary>
public sealed class StateConflictException : Exception
{
    public StateConflictException()
    {
    }

    public StateConflictException(string message)
        : base(message)
    {
    }

    public StateConflictException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
