using DeltaSync.Core.Config;
using NodaTime;

namespace DeltaSync.Core.State;

/// <summary>The outcome of loading a stream's checkpoint before a run.</summary>
/// <param name="Checkpoint">The checkpoint to resume from; null to start from the beginning.</param>
/// <param name="Warnings">What was found and done (corrupt versions skipped, reset), for the report.</param>
public sealed record LoadedCheckpoint(Checkpoint? Checkpoint, IReadOnlyList<string> Warnings);

/// <summary>A stream's newest checkpoint is corrupt and recovery options forbid repairing it.</summary>
public sealed class CheckpointCorruptException : Exception
{
    public CheckpointCorruptException()
    {
    }

    public CheckpointCorruptException(string message)
        : base(message)
    {
    }

    public CheckpointCorruptException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// Versioned checkpoint history over any <see cref="IStateStore"/>: validation on load, repair by falling back to the
/// newest valid version, rollback (appending a copy of an old version, so history stays append-only) and reset.
/// </summary>
public sealed class CheckpointHistory
{
    private const int ScanDepth = 1000;
    private readonly IStateStore _store;
    private readonly IClock _clock;

    public CheckpointHistory(IStateStore store, IClock clock)
    {
        _store = store;
        _clock = clock;
    }

    public IStateStore Store => _store;

    /// <summary>Loads the checkpoint to resume from, applying <c>state.recovery</c>.</summary>
    public Task<LoadedCheckpoint> LoadAsync(string stream, RecoveryOptions recovery, CancellationToken cancellationToken) =>
        LoadAsync(stream, recovery, null, cancellationToken);

    /// <summary>
    /// Loads the checkpoint to resume from, applying <c>state.recovery</c>. <paramref name="validate"/> checks what a
    /// checksum cannot (a cursor ahead of the source's clock): a version it finds a problem with is treated like a
    /// corrupt one — repaired from the newest version that passes, or refused.
    /// </summary>
    public async Task<LoadedCheckpoint> LoadAsync(string stream, RecoveryOptions recovery, Func<Checkpoint, string?>? validate, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(recovery);
        // The newest version alone: it is the one used unless it needs repair (every pass of run --follow loads it).
        var history = await _store.ReadHistoryAsync(stream, 1, cancellationToken).ConfigureAwait(false);
        if (history.Count == 0)
        {
            return new LoadedCheckpoint(null, []);
        }

        var newest = history[0];
        var checkpoint = CheckpointCodec.TryDeserialize(newest.Payload, out var problem);
        var intact = checkpoint is not null && checkpoint.Version == newest.Version && checkpoint.Stream == stream;
        validate = recovery.ValidateOnStart ? validate : null;
        var invalid = intact ? validate?.Invoke(checkpoint!) : null;
        if (intact && invalid is null)
        {
            return new LoadedCheckpoint(checkpoint, []);
        }

        var what = intact ? "invalid" : "corrupt";
        problem = intact
            ? invalid
            : problem ?? $"its content says stream '{checkpoint?.Stream}' version {checkpoint?.Version}, stored as '{stream}' version {newest.Version}";
        if (!recovery.ValidateOnStart)
        {
            throw new CheckpointCorruptException($"checkpoint of '{stream}' version {newest.Version} is corrupt: {problem}. validate_on_start is off, so it was not repaired.");
        }

        if (recovery.AutoRepair)
        {
            history = await _store.ReadHistoryAsync(stream, ScanDepth, cancellationToken).ConfigureAwait(false);
            foreach (var older in history.Where(h => h.Version < newest.Version))
            {
                var candidate = CheckpointCodec.TryDeserialize(older.Payload, out _);
                if (candidate is not null && candidate.Version == older.Version && validate?.Invoke(candidate) is null)
                {
                    var repaired = candidate with
                    {
                        Version = newest.Version + 1,
                        CreatedAt = _clock.GetCurrentInstant(),
                        Note = $"auto-repaired: version {newest.Version} was {what} ({problem}); restored version {older.Version}",
                    };
                    await AppendAsync(repaired, cancellationToken).ConfigureAwait(false);
                    return new LoadedCheckpoint(repaired, [$"Checkpoint of '{stream}' version {newest.Version} was {what} ({problem}); repaired from version {older.Version}"]);
                }
            }
        }

        if (recovery.ResetOnCorruption || recovery.AutoRepair)
        {
            await _store.DeleteStreamAsync(stream, cancellationToken).ConfigureAwait(false);
            return new LoadedCheckpoint(null, [$"Checkpoint of '{stream}' version {newest.Version} was {what} ({problem}) and no valid version remained; the state store's history was reset, and the table resumes from the checkpoint committed with the data at the destination, or from the start when there is none (the ledger keeps either idempotent)"]);
        }

        throw new CheckpointCorruptException(
            $"checkpoint of '{stream}' version {newest.Version} is {what}: {problem}. " +
            $"Run 'deltasync state rollback --table {TableOf(stream)} --to <version>' or set state.recovery.auto_repair: true.");
    }

    /// <summary>Appends <paramref name="checkpoint"/> as its version.</summary>
    public Task AppendAsync(Checkpoint checkpoint, CancellationToken cancellationToken) => AppendAsync(checkpoint, null, cancellationToken);

    /// <summary>
    /// Appends <paramref name="checkpoint"/>; with a <paramref name="lease"/> (and a store that keeps leases) only while
    /// that lease is still held at its epoch, so a stale worker's checkpoint is refused.
    /// </summary>
    /// <remarks>
    /// A save that failed for a transient reason is tried again (a few times, with back-off). An append is idempotent:
    /// when the version is already stored with this very payload (the first attempt committed but its answer was lost)
    /// it counts as saved; another payload under the version is a real conflict.
    /// </remarks>
    public async Task AppendAsync(Checkpoint checkpoint, LeaseHold? lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        var payload = CheckpointCodec.Serialize(checkpoint);
        var stored = new StoredCheckpoint(checkpoint.Stream, checkpoint.Version, payload, checkpoint.CreatedAt);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await (lease is not null && _store is ILeaseStore leases
                    ? leases.AppendFencedAsync(stored, lease.Owner, lease.Epoch, cancellationToken)
                    : _store.AppendAsync(stored, cancellationToken)).ConfigureAwait(false);
                await TrimAsync(checkpoint, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (StateConflictException)
            {
                if (await IsStoredAsync(stored, cancellationToken).ConfigureAwait(false))
                {
                    return;
                }

                throw;
            }
            catch (Pipeline.SyncException e) when (e.ErrorClass == Model.ErrorClass.Transient && attempt < SaveAttempts)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250 * (1 << attempt)), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private const int SaveAttempts = 4;

    /// <summary>
    /// How many versions of a stream are kept: the newest, which rollbacks and repairs choose from. A table that
    /// <c>run --follow</c> syncs saves a version per pass (several a second at times), so older ones are removed.
    /// </summary>
    public const int Kept = ScanDepth;

    /// <summary>Every <see cref="TrimEvery"/>th version removes those more than <see cref="Kept"/> behind it.</summary>
    private const int TrimEvery = 50;

    /// <summary>Removes versions older than the newest <see cref="Kept"/> now and then; housekeeping, so a failure only waits for the next turn.</summary>
    private async Task TrimAsync(Checkpoint saved, CancellationToken cancellationToken)
    {
        if (saved.Version <= Kept || saved.Version % TrimEvery != 0)
        {
            return;
        }

        try
        {
            await _store.TrimHistoryAsync(saved.Stream, saved.Version - Kept + 1, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Kept for the next turn: the history is only longer than it needs to be. (Cancelled too: the version is
            // saved, and the caller must not read the save as failed.)
        }
    }

    private async Task<bool> IsStoredAsync(StoredCheckpoint checkpoint, CancellationToken cancellationToken)
    {
        try
        {
            var history = await _store.ReadHistoryAsync(checkpoint.Stream, 16, cancellationToken).ConfigureAwait(false);
            return history.Any(h => h.Version == checkpoint.Version && h.Payload == checkpoint.Payload);
        }
        catch (Exception e) when (e is not OutOfMemoryException and not OperationCanceledException)
        {
            // Cannot tell: the conflict stands.
            return false;
        }
    }

    /// <summary>Every stored version, newest first, with its parsed form or the reason it is invalid.</summary>
    public async Task<IReadOnlyList<(StoredCheckpoint Stored, Checkpoint? Parsed, string? Problem)>> ListAsync(string stream, int limit, CancellationToken cancellationToken)
    {
        var history = await _store.ReadHistoryAsync(stream, limit, cancellationToken).ConfigureAwait(false);
        return history.Select(h =>
        {
            var parsed = CheckpointCodec.TryDeserialize(h.Payload, out var problem);
            return (h, parsed, problem);
        }).ToList();
    }

    /// <summary>Makes version <paramref name="version"/> current again by appending a copy of it.</summary>
    public async Task<Checkpoint> RollbackAsync(string stream, long version, CancellationToken cancellationToken)
    {
        var history = await ListAsync(stream, int.MaxValue, cancellationToken).ConfigureAwait(false);
        if (history.Count == 0)
        {
            throw new InvalidOperationException($"'{stream}' has no checkpoints");
        }

        var target = history.FirstOrDefault(h => h.Stored.Version == version);
        if (target.Stored is null)
        {
            throw new InvalidOperationException($"'{stream}' has no version {version} (versions {history[^1].Stored.Version}..{history[0].Stored.Version})");
        }

        if (target.Parsed is null)
        {
            throw new InvalidOperationException($"version {version} of '{stream}' is itself invalid: {target.Problem}");
        }

        var restored = target.Parsed with
        {
            Version = history[0].Stored.Version + 1,
            CreatedAt = _clock.GetCurrentInstant(),
            Note = $"rollback to version {version}",
        };
        await AppendAsync(restored, cancellationToken).ConfigureAwait(false);
        return restored;
    }

    private static string TableOf(string stream)
    {
        var slash = stream.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? stream : stream[(slash + 1)..];
    }
}
