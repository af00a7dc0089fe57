using System.Globalization;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using StackExchange.Redis;

namespace DeltaSync.Redis.State;

/// <summary>
/// Per-stream leases with a fencing epoch: the same rules as every lease store (<see cref="ILeaseStore"/>), each
/// check-and-set one Lua script, times from the Redis server's clock.
/// </summary>
public sealed partial class RedisStateStore
{
    /// <summary>
    /// Takes or extends the lease on a stream for <paramref name="ttl"/> and returns its fencing epoch: unchanged when
    /// <paramref name="owner"/> still holds it, one higher when it was free, expired or released.
    /// </summary>
    /// <param name="owner">Names one worker instance; two workers must never share an owner name.</param>
    /// <exception cref="LeaseHeldException">another owner holds a lease that has not expired.</exception>
    public Task<long> AcquireLeaseAsync(string stream, string owner, TimeSpan ttl, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentException.ThrowIfNullOrEmpty(owner);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ttl, TimeSpan.Zero);
        return RunAsync(
            $"acquire the lease on '{stream}'",
            async database =>
            {
                var result = (RedisResult[])(await database.ScriptEvaluateAsync(RedisScripts.AcquireLease, [Lease(stream)], [owner, Milliseconds(ttl)]).ConfigureAwait(false))!;
                if ((long)result[0] == 1)
                {
                    return (long)result[1];
                }

                var holder = (string)result[1]!;
                var epoch = (long)result[2];
                var until = DateTimeOffset.FromUnixTimeMilliseconds((long)result[3]).ToString("O", CultureInfo.InvariantCulture);
                throw new LeaseHeldException(
                    $"the lease on '{stream}' in {Description} is held by '{holder}' until {until} (epoch {epoch}): " +
                    "another worker is syncing this table. Stop it, or wait for its lease to expire.",
                    holder,
                    epoch);
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<long?> TakeOverLeaseAsync(string stream, string staleOwner, string owner, TimeSpan ttl, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentException.ThrowIfNullOrEmpty(staleOwner);
        ArgumentException.ThrowIfNullOrEmpty(owner);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ttl, TimeSpan.Zero);
        return RunAsync(
            $"take over the lease on '{stream}'",
            async database =>
            {
                var result = await database.ScriptEvaluateAsync(RedisScripts.TakeOverLease, [Lease(stream)], [staleOwner, owner, Milliseconds(ttl)]).ConfigureAwait(false);
                return result.IsNull ? null : (long?)result;
            },
            cancellationToken);
    }

    /// <summary>Extends a held lease to <paramref name="ttl"/> from now.</summary>
    /// <exception cref="StateConflictException">the lease has passed to another owner or epoch: stop writing.</exception>
    public Task RenewLeaseAsync(string stream, string owner, long epoch, TimeSpan ttl, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentException.ThrowIfNullOrEmpty(owner);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ttl, TimeSpan.Zero);

        // An expired lease that nobody took is renewed: no other epoch was handed out, so no other writer can exist.
        return RunAsync(
            $"renew the lease on '{stream}'",
            async database =>
            {
                var result = (RedisResult[])(await database.ScriptEvaluateAsync(RedisScripts.RenewLease, [Lease(stream)], [owner, epoch, Milliseconds(ttl)]).ConfigureAwait(false))!;
                if ((long)result[0] != 1)
                {
                    throw StaleWriter(stream, owner, epoch, result);
                }

                return true;
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<long> RaiseEpochAsync(string stream, string owner, long epoch, long floor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentException.ThrowIfNullOrEmpty(owner);
        return RunAsync(
            $"raise the lease epoch of '{stream}'",
            async database =>
            {
                var result = (RedisResult[])(await database.ScriptEvaluateAsync(RedisScripts.RaiseEpoch, [Lease(stream)], [owner, epoch, floor]).ConfigureAwait(false))!;
                if ((long)result[0] != 1)
                {
                    throw StaleWriter(stream, owner, epoch, result);
                }

                return (long)result[1];
            },
            cancellationToken);
    }

    /// <summary>Gives a lease up so that another owner can take it at once; does nothing when it is no longer held.</summary>
    public Task ReleaseLeaseAsync(string stream, string owner, long epoch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentException.ThrowIfNullOrEmpty(owner);
        return RunAsync(
            $"release the lease on '{stream}'",
            database => database.ScriptEvaluateAsync(RedisScripts.ReleaseLease, [Lease(stream)], [owner, epoch]),
            cancellationToken);
    }

    /// <summary>
    /// Appends a version only while <paramref name="owner"/> still holds the stream's lease at <paramref name="epoch"/>:
    /// the lease check and the append are one script, so no acquisition can slip in between.
    /// </summary>
    /// <exception cref="StateConflictException">the lease has passed on (a stale writer), or the version exists.</exception>
    public Task AppendFencedAsync(StoredCheckpoint checkpoint, string owner, long epoch, CancellationToken cancellationToken)
    {
        CheckVersion(checkpoint);
        ArgumentException.ThrowIfNullOrEmpty(owner);
        return RunAsync(
            $"append version {checkpoint.Version} of '{checkpoint.Stream}'",
            async database =>
            {
                var result = (RedisResult[])(await database.ScriptEvaluateAsync(
                    RedisScripts.AppendFenced,
                    [Checkpoints(checkpoint.Stream), Streams, Lease(checkpoint.Stream)],
                    [checkpoint.Version, EncodeCheckpoint(checkpoint), checkpoint.Stream, owner, epoch]).ConfigureAwait(false))!;
                return (long)result[0] switch
                {
                    1 => true,
                    0 => throw VersionExists(checkpoint),
                    _ => throw StaleWriter(checkpoint.Stream, owner, epoch, result),
                };
            },
            cancellationToken);
    }

    private static long Milliseconds(TimeSpan ttl) => (long)Math.Ceiling(ttl.TotalMilliseconds);

    /// <param name="lease">The script's answer: status, then the lease's owner, epoch, expiry and the server's now.</param>
    private StateConflictException StaleWriter(string stream, string owner, long epoch, RedisResult[] lease)
    {
        var holderName = (string?)lease[1] ?? "";
        var holder = holderName.Length == 0
            ? "nobody holds it"
            : (long)lease[3] > (long)lease[4]
                ? $"it is held by '{holderName}' with epoch {(long)lease[2]}"
                : $"it was last held by '{holderName}' with epoch {(long)lease[2]}";
        return new StateConflictException(
            $"stale writer: epoch {epoch} of '{owner}' no longer holds the lease on '{stream}' in {Description} ({holder}). Stop writing; the new owner continues from the stored checkpoint.");
    }
}
