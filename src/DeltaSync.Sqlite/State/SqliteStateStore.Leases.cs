using DeltaSync.Core.State;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Sqlite.State;

/// <summary>
/// Per-stream leases in the SQLite state file (workers on one machine sharing it): the same rules as every lease store
/// (<see cref="ILeaseStore"/>). Times are this machine's clock, in Unix milliseconds; SQLite has no server clock.
/// </summary>
public sealed partial class SqliteStateStore
{
    private const string LeasesSql = "CREATE TABLE IF NOT EXISTS leases (stream TEXT PRIMARY KEY, owner TEXT NOT NULL, epoch INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL)";

    public async Task<long> AcquireLeaseAsync(string stream, string owner, TimeSpan ttl, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentException.ThrowIfNullOrEmpty(owner);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ttl, TimeSpan.Zero);
        var connection = await OpenLeasesAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = connection.CreateCommand();
            command.CommandText = """
                INSERT INTO leases AS l (stream, owner, epoch, expires_at_ms) VALUES ($stream, $owner, 1, $now + $ttl)
                ON CONFLICT (stream) DO UPDATE SET
                    owner = excluded.owner,
                    epoch = CASE WHEN l.owner = excluded.owner AND l.expires_at_ms > $now THEN l.epoch ELSE l.epoch + 1 END,
                    expires_at_ms = excluded.expires_at_ms
                WHERE l.owner = excluded.owner OR l.expires_at_ms <= $now
                RETURNING epoch
                """;
            Lease(command, stream, owner, ttl);
            if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long epoch)
            {
                return epoch;
            }

            await using var holder = connection.CreateCommand();
            holder.CommandText = "SELECT owner, epoch, expires_at_ms FROM leases WHERE stream = $stream";
            holder.Parameters.AddWithValue("$stream", stream);
            await using var reader = await holder.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var until = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(2)).ToString("O", System.Globalization.CultureInfo.InvariantCulture);
            throw new LeaseHeldException(
                $"the lease on '{stream}' in {Description} is held by '{reader.GetString(0)}' until {until} (epoch {reader.GetInt64(1)}): another worker is syncing this table. Stop it, or wait for its lease to expire.",
                reader.GetString(0),
                reader.GetInt64(1));
        }
    }

    public async Task<long?> TakeOverLeaseAsync(string stream, string staleOwner, string owner, TimeSpan ttl, CancellationToken cancellationToken)
    {
        var connection = await OpenLeasesAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "UPDATE leases SET owner = $owner, epoch = epoch + 1, expires_at_ms = $now + $ttl WHERE stream = $stream AND owner = $stale RETURNING epoch";
            Lease(command, stream, owner, ttl);
            command.Parameters.AddWithValue("$stale", staleOwner);
            return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as long?;
        }
    }

    public async Task RenewLeaseAsync(string stream, string owner, long epoch, TimeSpan ttl, CancellationToken cancellationToken)
    {
        var connection = await OpenLeasesAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "UPDATE leases SET expires_at_ms = $now + $ttl WHERE stream = $stream AND owner = $owner AND epoch = $epoch";
            Lease(command, stream, owner, ttl);
            command.Parameters.AddWithValue("$epoch", epoch);
            if (await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 0)
            {
                throw Stale(stream, owner, epoch);
            }
        }
    }

    public async Task<long> RaiseEpochAsync(string stream, string owner, long epoch, long floor, CancellationToken cancellationToken)
    {
        var connection = await OpenLeasesAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "UPDATE leases SET epoch = max(epoch, $floor + 1) WHERE stream = $stream AND owner = $owner AND epoch = $epoch RETURNING epoch";
            command.Parameters.AddWithValue("$stream", stream);
            command.Parameters.AddWithValue("$owner", owner);
            command.Parameters.AddWithValue("$epoch", epoch);
            command.Parameters.AddWithValue("$floor", floor);
            return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as long?
                ?? throw Stale(stream, owner, epoch);
        }
    }

    public async Task ReleaseLeaseAsync(string stream, string owner, long epoch, CancellationToken cancellationToken)
    {
        var connection = await OpenLeasesAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            // Expired rather than deleted: the next owner's epoch must be higher than every epoch handed out before.
            await using var command = connection.CreateCommand();
            command.CommandText = "UPDATE leases SET expires_at_ms = $now WHERE stream = $stream AND owner = $owner AND epoch = $epoch AND expires_at_ms > $now";
            Lease(command, stream, owner, TimeSpan.Zero);
            command.Parameters.AddWithValue("$epoch", epoch);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task AppendFencedAsync(StoredCheckpoint checkpoint, string owner, long epoch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        var connection = await OpenLeasesAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            // One IMMEDIATE transaction: the lease check and the insert see the same state (SQLite has one writer).
            var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(System.Data.IsolationLevel.Serializable, cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                await using (var check = connection.CreateCommand())
                {
                    check.Transaction = transaction;
                    check.CommandText = "SELECT 1 FROM leases WHERE stream = $stream AND owner = $owner AND epoch = $epoch";
                    check.Parameters.AddWithValue("$stream", checkpoint.Stream);
                    check.Parameters.AddWithValue("$owner", owner);
                    check.Parameters.AddWithValue("$epoch", epoch);
                    if (await check.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is null)
                    {
                        throw Stale(checkpoint.Stream, owner, epoch);
                    }
                }

                await InsertCheckpointAsync(connection, transaction, checkpoint, cancellationToken).ConfigureAwait(false);
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task<SqliteConnection> OpenLeasesAsync(CancellationToken cancellationToken)
    {
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, LeasesSql, cancellationToken).ConfigureAwait(false);
        return connection;
    }

    private static void Lease(SqliteCommand command, string stream, string owner, TimeSpan ttl)
    {
        command.Parameters.AddWithValue("$stream", stream);
        command.Parameters.AddWithValue("$owner", owner);
        command.Parameters.AddWithValue("$now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$ttl", (long)ttl.TotalMilliseconds);
    }

    private StateConflictException Stale(string stream, string owner, long epoch) =>
        new($"stale writer: '{owner}' no longer holds the lease on '{stream}' at epoch {epoch} in {Description}; another worker took over. This worker's checkpoint was refused.");
}
