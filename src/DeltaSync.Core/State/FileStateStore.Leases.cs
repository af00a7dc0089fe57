using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using NodaTime;
using NodaTime.Text;

namespace DeltaSync.Core.State;

/// <summary>
/// Per-stream leases as files, with the same rules as every lease store (<see cref="ILeaseStore"/>):
/// <c>leases/&lt;stream&gt;.json</c> holds the owner, the fencing epoch and the expiry, and <c>leases/&lt;stream&gt;.lock</c>
/// serializes every read-modify-write of it, and every fenced append, across processes and store instances.
/// </summary>
/// <remarks>
/// The lock is the operating system's: the lock file is opened with <see cref="FileShare.None"/>, which .NET turns into
/// an exclusive <c>flock</c> on Unix and a sharing mode on Windows, so it is released when its holder closes it or dies
/// (setting <c>DOTNET_SYSTEM_IO_DISABLEFILELOCKING</c> turns it off, and with it the mutual exclusion).
/// Holders keep it for one small read and write, so a busy lock is retried briefly. Times are this machine's clock (a
/// folder shared by machines needs their clocks in step). A lease file is replaced atomically and never deleted (a
/// released lease is expired instead), so the next owner's epoch is always higher than every epoch handed out before,
/// even across a state reset.
/// </remarks>
public sealed partial class FileStateStore : ILeaseStore
{
    private const string LeasesFolder = "leases";

    /// <summary>How long a busy lease lock is retried before giving up (holders keep it for milliseconds).</summary>
    private static readonly TimeSpan LeaseLockWait = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan LeaseLockMaxPause = TimeSpan.FromMilliseconds(20);

    private string Leases => Path.Combine(_root, LeasesFolder);

    public Task<long> AcquireLeaseAsync(string stream, string owner, TimeSpan ttl, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentException.ThrowIfNullOrEmpty(owner);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ttl, TimeSpan.Zero);
        return WithLeaseLockAsync(
            stream,
            async (lease, now) =>
            {
                if (lease is not null && lease.Owner != owner && lease.ExpiresAt > now)
                {
                    throw new LeaseHeldException(
                        $"the lease on '{stream}' in {Description} is held by '{lease.Owner}' until {InstantPattern.ExtendedIso.Format(lease.ExpiresAt)} (epoch {lease.Epoch}): " +
                        "another worker is syncing this table. Stop it, or wait for its lease to expire.",
                        lease.Owner,
                        lease.Epoch);
                }

                // The same owner keeps its epoch while the lease lives; anyone taking a free, expired or released lease
                // gets a higher one.
                var epoch = lease is null ? 1 : lease.Owner == owner && lease.ExpiresAt > now ? lease.Epoch : lease.Epoch + 1;
                await WriteLeaseAsync(stream, new LeaseFile(owner, epoch, now + Duration.FromTimeSpan(ttl)), cancellationToken).ConfigureAwait(false);
                return epoch;
            },
            cancellationToken);
    }

    public Task<long?> TakeOverLeaseAsync(string stream, string staleOwner, string owner, TimeSpan ttl, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentException.ThrowIfNullOrEmpty(owner);
        return WithLeaseLockAsync(
            stream,
            async (lease, now) =>
            {
                if (lease is null || lease.Owner != staleOwner)
                {
                    return (long?)null;
                }

                var epoch = lease.Epoch + 1;
                await WriteLeaseAsync(stream, new LeaseFile(owner, epoch, now + Duration.FromTimeSpan(ttl)), cancellationToken).ConfigureAwait(false);
                return epoch;
            },
            cancellationToken);
    }

    public Task RenewLeaseAsync(string stream, string owner, long epoch, TimeSpan ttl, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentException.ThrowIfNullOrEmpty(owner);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ttl, TimeSpan.Zero);

        // An expired lease that nobody took is renewed: no other epoch was handed out, so no other writer can exist.
        return WithLeaseLockAsync(
            stream,
            async (lease, now) =>
            {
                if (lease is null || lease.Owner != owner || lease.Epoch != epoch)
                {
                    throw StaleWriter(stream, owner, epoch, lease, now);
                }

                await WriteLeaseAsync(stream, lease with { ExpiresAt = now + Duration.FromTimeSpan(ttl) }, cancellationToken).ConfigureAwait(false);
                return true;
            },
            cancellationToken);
    }

    public Task<long> RaiseEpochAsync(string stream, string owner, long epoch, long floor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentException.ThrowIfNullOrEmpty(owner);
        return WithLeaseLockAsync(
            stream,
            async (lease, now) =>
            {
                if (lease is null || lease.Owner != owner || lease.Epoch != epoch)
                {
                    throw StaleWriter(stream, owner, epoch, lease, now);
                }

                if (lease.Epoch > floor)
                {
                    return lease.Epoch;
                }

                await WriteLeaseAsync(stream, lease with { Epoch = floor + 1 }, cancellationToken).ConfigureAwait(false);
                return floor + 1;
            },
            cancellationToken);
    }

    public Task ReleaseLeaseAsync(string stream, string owner, long epoch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentException.ThrowIfNullOrEmpty(owner);

        // Expired rather than deleted: the next owner's epoch must be higher than every epoch handed out before.
        return WithLeaseLockAsync(
            stream,
            async (lease, now) =>
            {
                if (lease is not null && lease.Owner == owner && lease.Epoch == epoch && lease.ExpiresAt > now)
                {
                    await WriteLeaseAsync(stream, lease with { ExpiresAt = now }, cancellationToken).ConfigureAwait(false);
                }

                return true;
            },
            cancellationToken);
    }

    public Task AppendFencedAsync(StoredCheckpoint checkpoint, string owner, long epoch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(checkpoint.Version);
        ArgumentException.ThrowIfNullOrEmpty(owner);

        // Under the lease lock: a takeover cannot slip in between the check and the append, so once a new owner holds
        // the lease (and reads the newest checkpoint), the old one can no longer add a version.
        return WithLeaseLockAsync(
            checkpoint.Stream,
            async (lease, now) =>
            {
                if (lease is null || lease.Owner != owner || lease.Epoch != epoch)
                {
                    throw StaleWriter(checkpoint.Stream, owner, epoch, lease, now);
                }

                await AppendAsync(checkpoint, cancellationToken).ConfigureAwait(false);
                return true;
            },
            cancellationToken);
    }

    /// <summary>Runs <paramref name="work"/> on the stream's current lease (null when none) while holding its lock file.</summary>
    private async Task<T> WithLeaseLockAsync<T>(string stream, Func<LeaseFile?, Instant, Task<T>> work, CancellationToken cancellationToken)
    {
        DurableFile.EnsureDirectory(Leases);
        var lockFile = await LockLeaseAsync(stream, cancellationToken).ConfigureAwait(false);
        await using (lockFile.ConfigureAwait(false))
        {
            var lease = await ReadLeaseAsync(stream, cancellationToken).ConfigureAwait(false);
            return await work(lease, SystemClock.Instance.GetCurrentInstant()).ConfigureAwait(false);
        }
    }

    private async Task<FileStream> LockLeaseAsync(string stream, CancellationToken cancellationToken)
    {
        var path = Path.Combine(Leases, Escape(stream) + ".lock");
        var waited = Stopwatch.StartNew();
        var pause = TimeSpan.FromMilliseconds(1);
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 0);
            }
            catch (IOException e) when (e.GetType() == typeof(IOException))
            {
                // A sharing violation (subclasses are missing folders and the like, which waiting does not fix).
                if (waited.Elapsed >= LeaseLockWait)
                {
                    throw new SyncException(
                        ErrorClass.Transient,
                        $"the lease on '{stream}' in {Description} stayed locked for {LeaseLockWait.TotalSeconds:0} s: another process keeps '{path}' open. Retry; if it persists, find that process.",
                        e);
                }

                await Task.Delay(pause, cancellationToken).ConfigureAwait(false);
                pause = pause * 2 < LeaseLockMaxPause ? pause * 2 : LeaseLockMaxPause;
            }
        }
    }

    private string LeasePath(string stream) => Path.Combine(Leases, Escape(stream) + ".json");

    private async Task<LeaseFile?> ReadLeaseAsync(string stream, CancellationToken cancellationToken)
    {
        var path = LeasePath(stream);
        string text;
        try
        {
            text = await File.ReadAllTextAsync(path, Encoding.UTF8, cancellationToken).ConfigureAwait(false);
        }
        catch (FileNotFoundException)
        {
            return null;
        }

        try
        {
            var o = JsonNode.Parse(text)!.AsObject();
            return new LeaseFile(
                o["owner"]!.GetValue<string>(),
                o["epoch"]!.GetValue<long>(),
                InstantPattern.ExtendedIso.Parse(o["expires_at"]!.GetValue<string>()).GetValueOrThrow());
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or FormatException or UnparsableValueException)
        {
            throw new InvalidDataException(
                $"lease file '{path}' is unreadable: {e.Message}. Repair it by hand (owner, epoch, expires_at) rather than deleting it: " +
                "a lost lease starts its fencing epoch again at 1, and destinations refuse batches older than the last epoch they committed.",
                e);
        }
    }

    private Task WriteLeaseAsync(string stream, LeaseFile lease, CancellationToken cancellationToken)
    {
        var json = new JsonObject
        {
            ["stream"] = stream,
            ["owner"] = lease.Owner,
            ["epoch"] = lease.Epoch,
            ["expires_at"] = InstantPattern.ExtendedIso.Format(lease.ExpiresAt),
        };
        return DurableFile.ReplaceAsync(LeasePath(stream), Encoding.UTF8.GetBytes(json.ToJsonString(Indented)), cancellationToken);
    }

    private StateConflictException StaleWriter(string stream, string owner, long epoch, LeaseFile? lease, Instant now)
    {
        var holder = lease switch
        {
            null => "nobody holds it",
            _ when lease.ExpiresAt > now => $"it is held by '{lease.Owner}' with epoch {lease.Epoch}",
            _ => $"it was last held by '{lease.Owner}' with epoch {lease.Epoch}",
        };
        return new StateConflictException(
            $"stale writer: epoch {epoch} of '{owner}' no longer holds the lease on '{stream}' in {Description} ({holder}). Stop writing; the new owner continues from the stored checkpoint.");
    }

    /// <summary>One lease file's content.</summary>
    private sealed record LeaseFile(string Owner, long Epoch, Instant ExpiresAt);
}
