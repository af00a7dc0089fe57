namespace DeltaSync.Core.State;

/// <summary>Another worker holds a live lease on the stream.</summary>
public sealed class LeaseHeldException : Exception
{
    public LeaseHeldException()
    {
    }

    public LeaseHeldException(string message)
        : base(message)
    {
    }

    public LeaseHeldException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public LeaseHeldException(string message, string holder, long epoch)
        : base(message)
    {
        Holder = holder;
        Epoch = epoch;
    }

    /// <summary>The owner holding the lease.</summary>
    public string Holder { get; } = "";

    /// <summary>The holder's epoch.</summary>
    public long Epoch { get; }
}

/// <summary>
/// A state store that hands out per-stream leases with a fencing epoch, so that two workers never sync one table at
/// once: each acquisition by a new owner raises the epoch, and a checkpoint is appended only while its writer still
/// holds the lease at its epoch (a stale worker's checkpoint is refused). Destinations refuse a batch whose
/// checkpoint carries an epoch older than the one they last committed.
/// </summary>
public interface ILeaseStore
{
    /// <summary>Takes (or, for the same owner, extends) the lease; returns its epoch.</summary>
    /// <exception cref="LeaseHeldException">another owner holds a live lease.</exception>
    Task<long> AcquireLeaseAsync(string stream, string owner, TimeSpan ttl, CancellationToken cancellationToken);

    /// <summary>
    /// Takes the lease from <paramref name="staleOwner"/> (known to be dead) with a higher epoch; null when it is no
    /// longer that owner's.
    /// </summary>
    Task<long?> TakeOverLeaseAsync(string stream, string staleOwner, string owner, TimeSpan ttl, CancellationToken cancellationToken);

    /// <summary>Extends a held lease.</summary>
    /// <exception cref="StateConflictException">the lease passed to another owner or epoch.</exception>
    Task RenewLeaseAsync(string stream, string owner, long epoch, TimeSpan ttl, CancellationToken cancellationToken);

    /// <summary>
    /// Raises the epoch of a held lease above <paramref name="floor"/> (no change when it already is) and returns it.
    /// Used when the destination has committed batches under a higher epoch than this store knows — the store was lost
    /// and restored, or replaced — so this worker's writes are not refused as stale.
    /// </summary>
    /// <exception cref="StateConflictException">the lease is no longer <paramref name="owner"/>'s at <paramref name="epoch"/>.</exception>
    Task<long> RaiseEpochAsync(string stream, string owner, long epoch, long floor, CancellationToken cancellationToken);

    /// <summary>Gives the lease up (the next owner gets a higher epoch).</summary>
    Task ReleaseLeaseAsync(string stream, string owner, long epoch, CancellationToken cancellationToken);

    /// <summary>Appends a checkpoint version only while <paramref name="owner"/> holds the lease at <paramref name="epoch"/>.</summary>
    /// <exception cref="StateConflictException">a stale writer, or the version exists.</exception>
    Task AppendFencedAsync(StoredCheckpoint checkpoint, string owner, long epoch, CancellationToken cancellationToken);
}
