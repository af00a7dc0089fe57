using System.Collections.Concurrent;
using DeltaSync.Core.Model;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput.Messages;
using NpgsqlTypes;

namespace DeltaSync.Postgres.Capture;

/// <summary>
/// One table's replication stream, left open after a pass ended at its marker so the next pass of <c>run --follow</c>
/// carries on reading it instead of starting a new walsender that decodes from the slot's restart point again.
/// </summary>
internal sealed class WalStream : IAsyncDisposable
{
    public WalStream(LogicalReplicationConnection replication, IAsyncEnumerator<PgOutputReplicationMessage> messages, CancellationTokenSource stop, bool binary)
    {
        Replication = replication;
        Messages = messages;
        Stop = stop;
        Binary = binary;
    }

    /// <summary>Whether pgoutput sends values in binary (else as text).</summary>
    public bool Binary { get; }

    public LogicalReplicationConnection Replication { get; }

    public IAsyncEnumerator<PgOutputReplicationMessage> Messages { get; }

    public CancellationTokenSource Stop { get; }

    /// <summary>The relations of this table seen on the stream (pgoutput describes a relation once per stream).</summary>
    public HashSet<uint> RelationIds { get; } = [];

    /// <summary>The log's columns by position into the schema's order.</summary>
    public int[] ColumnMap { get; set; } = [];

    /// <summary>Where the stream stands: the checkpoint of the pass that ended at its marker.</summary>
    public Position Position { get; set; } = Position.None;

    public async ValueTask DisposeAsync()
    {
        await Stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await Messages.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or IOException or InvalidOperationException)
        {
            // Ending a stream we stopped reading: nothing to keep.
        }

        await Replication.DisposeAsync().ConfigureAwait(false);
        Stop.Dispose();
    }
}

/// <summary>
/// The open replication streams of a source, by slot, kept between passes. Closing them (when the source is disposed:
/// the end of a run, or of <c>run --follow</c>) advances each slot to the position its stream reached, which is
/// checkpointed.
/// </summary>
internal sealed class WalStreams : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, WalStream> _idle = new(StringComparer.Ordinal);
    private readonly NpgsqlDataSource _data;

    public WalStreams(NpgsqlDataSource data)
    {
        _data = data;
    }

    /// <summary>The slot's idle stream if it stands exactly at <paramref name="position"/>; any other is closed.</summary>
    public async Task<WalStream?> TakeAsync(string slot, Position position)
    {
        if (!_idle.TryRemove(slot, out var stream))
        {
            return null;
        }

        if (stream.Position == position)
        {
            return stream;
        }

        await stream.DisposeAsync().ConfigureAwait(false);
        return null;
    }

    /// <summary>Keeps a stream whose pass was checkpointed at <see cref="WalStream.Position"/>.</summary>
    public async Task ReturnAsync(string slot, WalStream stream)
    {
        if (!_idle.TryAdd(slot, stream))
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var (slot, stream) in _idle.ToArray())
        {
            _idle.TryRemove(slot, out _);
            await stream.DisposeAsync().ConfigureAwait(false);
            if (NpgsqlLogSequenceNumber.TryParse(stream.Position.Value, out var lsn))
            {
                await AdvanceAsync(_data, slot, lsn, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Advances an idle slot to a checkpointed position (decodes only from its restart point, kept recent by the streams' feedback).</summary>
    public static async Task AdvanceAsync(NpgsqlDataSource data, string slot, NpgsqlLogSequenceNumber lsn, CancellationToken cancellationToken)
    {
        try
        {
            await using var sql = await PostgresConnectionFactory.OpenAsync(data, "source", cancellationToken).ConfigureAwait(false);
            await WaitReleasedAsync(sql, slot, cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand(
                "SELECT pg_replication_slot_advance(slot_name, $2) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active AND confirmed_flush_lsn < $2",
                sql);
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = slot });
            command.Parameters.Add(new NpgsqlParameter<NpgsqlLogSequenceNumber> { TypedValue = lsn, NpgsqlDbType = NpgsqlDbType.PgLsn });
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState is "55000" or "55006")
        {
            // Another reader holds the slot right now; the next pass acknowledges.
        }
    }

    /// <summary>
    /// The walsender of a stream we just closed exits on its own, a moment later; until it has, the slot is active and
    /// cannot be advanced. Waits a little for that (not indefinitely: another process may hold the slot).
    /// </summary>
    private static async Task WaitReleasedAsync(NpgsqlConnection sql, string slot, CancellationToken cancellationToken)
    {
        await using var active = new NpgsqlCommand("SELECT active FROM pg_replication_slots WHERE slot_name = $1", sql);
        active.Parameters.Add(new NpgsqlParameter<string> { TypedValue = slot });
        for (var attempt = 0; attempt < 50; attempt++)
        {
            if (await active.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not true)
            {
                return;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken).ConfigureAwait(false);
        }
    }
}
