using System.Net.Sockets;
using Npgsql;

namespace DeltaSync.Postgres;

/// <summary>
/// Opens an endpoint's first pooled connection in the background as soon as the endpoint is opened, so that the
/// connection's start-up (TCP, authentication, and Npgsql loading the database's types, together 40–90 ms here) overlaps
/// with what the run does before it needs the database (opening the state store, the table's lease) instead of
/// adding to it. A failure is ignored: the first real use opens its own connection, with retries, and reports what is
/// wrong there. Disposing cancels a warm-up still under way (a server that does not answer must not delay the exit).
/// </summary>
internal sealed class ConnectionWarmUp : IAsyncDisposable
{
    private static readonly TimeSpan Grace = TimeSpan.FromMilliseconds(250);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _task;

    private ConnectionWarmUp(Func<CancellationToken, Task<NpgsqlConnection>> open) =>
        _task = Task.Run(() => WarmAsync(open, _stop.Token));

    /// <summary>Starts opening a connection with <paramref name="open"/> and returning it to the pool.</summary>
    public static ConnectionWarmUp Start(Func<CancellationToken, Task<NpgsqlConnection>> open) => new(open);

    private static async Task WarmAsync(Func<CancellationToken, Task<NpgsqlConnection>> open, CancellationToken cancellationToken)
    {
        try
        {
            var connection = await open(cancellationToken).ConfigureAwait(false);
            await connection.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or SocketException or TimeoutException or IOException or OperationCanceledException or InvalidOperationException or ObjectDisposedException or Core.Pipeline.SyncException)
        {
            // The real use reports it.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        // Npgsql does not give up an attempt still in its start-up handshake when cancelled (a server that accepted the
        // connection and says nothing holds it until the connect timeout). Such an attempt is left to end on its own,
        // its failure ignored, rather than hold up the exit; anything else is over by now or within moments.
        if (await Task.WhenAny(_task, Task.Delay(Grace)).ConfigureAwait(false) == _task)
        {
            _stop.Dispose();
        }
    }
}
