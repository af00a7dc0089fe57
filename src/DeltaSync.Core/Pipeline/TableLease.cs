using System.Diagnostics;
using System.Globalization;
using DeltaSync.Core.Model;
using DeltaSync.Core.State;

namespace DeltaSync.Core.Pipeline;

/// <summary>
/// This worker's lease on one table's stream, when the state store keeps leases (<see cref="ILeaseStore"/>): taken
/// before the table is read, renewed as batches commit, released at the end. Its epoch goes into every checkpoint, so
/// the state store and the destination refuse a stale worker's writes. A lease left by a worker on this machine that
/// is no longer running (killed) is taken over at once rather than waited out.
/// </summary>
public sealed class TableLease
{
    /// <summary>How long a lease lives without renewal: a crashed worker on another machine blocks the table this long.</summary>
    public static readonly TimeSpan Ttl = TimeSpan.FromSeconds(60);

    private readonly ILeaseStore _store;
    private readonly string _stream;
    private readonly Stopwatch _sinceRenewal = Stopwatch.StartNew();

    private TableLease(ILeaseStore store, string stream, LeaseHold hold)
    {
        _store = store;
        _stream = stream;
        Hold = hold;
    }

    public LeaseHold Hold { get; private set; }

    /// <summary>This process, as a lease owner: machine, process id and process start time (a reused pid is not us).</summary>
    public static string LocalOwner { get; } = string.Create(
        CultureInfo.InvariantCulture,
        $"{Environment.MachineName}/{Environment.ProcessId}/{new DateTimeOffset(Process.GetCurrentProcess().StartTime.ToUniversalTime()).ToUnixTimeMilliseconds()}");

    /// <summary>The lease on <paramref name="stream"/>, or null when the store keeps no leases.</summary>
    public static async Task<TableLease?> AcquireAsync(IStateStore store, string stream, CancellationToken cancellationToken)
    {
        if (store is not ILeaseStore leases)
        {
            return null;
        }

        try
        {
            var epoch = await leases.AcquireLeaseAsync(stream, LocalOwner, Ttl, cancellationToken).ConfigureAwait(false);
            return new TableLease(leases, stream, new LeaseHold(LocalOwner, epoch));
        }
        catch (LeaseHeldException held) when (IsDeadLocalOwner(held.Holder))
        {
            var epoch = await leases.TakeOverLeaseAsync(stream, held.Holder, LocalOwner, Ttl, cancellationToken).ConfigureAwait(false)
                ?? throw new SyncException(ErrorClass.Transient, held.Message, held);
            return new TableLease(leases, stream, new LeaseHold(LocalOwner, epoch));
        }
        catch (LeaseHeldException held)
        {
            throw new SyncException(ErrorClass.Transient, held.Message, held);
        }
    }

    /// <summary>Renews once a third of the time to live has passed (called as batches commit).</summary>
    public async Task RenewIfDueAsync(CancellationToken cancellationToken)
    {
        if (_sinceRenewal.Elapsed < Ttl / 3)
        {
            return;
        }

        await _store.RenewLeaseAsync(_stream, Hold.Owner, Hold.Epoch, Ttl, cancellationToken).ConfigureAwait(false);
        _sinceRenewal.Restart();
    }

    /// <summary>
    /// Makes this lease's epoch higher than <paramref name="committedEpoch"/>, an epoch the destination has already
    /// committed under (the store forgot it: lost, restored, replaced). Returns true when it had to be raised.
    /// </summary>
    public async Task<bool> RaiseAboveAsync(long committedEpoch, CancellationToken cancellationToken)
    {
        if (Hold.Epoch > committedEpoch)
        {
            return false;
        }

        var epoch = await _store.RaiseEpochAsync(_stream, Hold.Owner, Hold.Epoch, committedEpoch, cancellationToken).ConfigureAwait(false);
        Hold = Hold with { Epoch = epoch };
        return true;
    }

    public Task ReleaseAsync() => _store.ReleaseLeaseAsync(_stream, Hold.Owner, Hold.Epoch, CancellationToken.None);

    /// <summary>True when <paramref name="owner"/> names a process of this machine that is not running any more.</summary>
    public static bool IsDeadLocalOwner(string owner)
    {
        ArgumentNullException.ThrowIfNull(owner);
        var parts = owner.Split('/');
        if (parts.Length != 3 || parts[0] != Environment.MachineName
            || !int.TryParse(parts[1], CultureInfo.InvariantCulture, out var pid)
            || !long.TryParse(parts[2], CultureInfo.InvariantCulture, out var started))
        {
            return false;
        }

        try
        {
            using var process = Process.GetProcessById(pid);
            var actual = new DateTimeOffset(process.StartTime.ToUniversalTime()).ToUnixTimeMilliseconds();
            return Math.Abs(actual - started) > 1000 || process.HasExited;
        }
        catch (ArgumentException)
        {
            return true;
        }
        catch (InvalidOperationException)
        {
            return true;
        }
    }
}
