using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DeltaSync.Core.Config;
using DeltaSync.Postgres.Tests.Engine;
using NodaTime;

namespace DeltaSync.Postgres.Tests.Connector;

/// <summary>
/// An endpoint opened through the connector starts connecting at once, in the background (ConnectionWarmUp), so that
/// the connection's start-up overlaps with the run's own (state store, lease) instead of following it.
/// </summary>
public sealed class ConnectionWarmUpTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task An_opened_destination_creates_its_ledger_schema_before_it_is_asked_anything()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        var config = w.Config("{name: accounts}");

        await using var destination = await new PostgresConnector(SystemClock.Instance).OpenDestinationAsync(config.Sync.Destination, config, CancellationToken.None);

        Assert.True(
            await EventuallyAsync(() => w.Destination.ScalarAsync<bool>("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'deltasync')")),
            "no deltasync schema in the destination: the destination did not warm up");
    }

    [Fact]
    public async Task An_opened_source_holds_a_pooled_connection_before_it_is_asked_anything()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        var config = w.Config("{name: accounts}");

        await using var source = await new PostgresConnector(SystemClock.Instance).OpenSourceAsync(config.Sync.Source, config, CancellationToken.None);

        Assert.True(
            await EventuallyAsync(() => w.Source.ScalarAsync<bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'deltasync capture')")),
            "no connection of the source's: the source did not warm up");
    }

    [Fact]
    public async Task Endpoints_whose_server_never_answers_close_at_once()
    {
        // Accepts connections and never says a word: a warm-up would wait for Npgsql's connect timeout (15 s).
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var port = ((IPEndPoint)silent.LocalEndpoint).Port;
        var accepted = new System.Collections.Concurrent.ConcurrentBag<TcpClient>();
        var accepting = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    accepted.Add(await silent.AcceptTcpClientAsync());
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        });
        await using var w = await PgSyncWorkspace.CreateAsync();
        var config = w.Config("{name: accounts}");
        var silentEndpoint = new EndpointOptions("source", "postgresql", $"postgresql://u:secret@127.0.0.1:{port}/nowhere", []);
        var connector = new PostgresConnector(SystemClock.Instance);
        var source = await connector.OpenSourceAsync(silentEndpoint, config, CancellationToken.None);
        var destination = await connector.OpenDestinationAsync(silentEndpoint, config, CancellationToken.None);
        Assert.True(await EventuallyAsync(() => Task.FromResult(accepted.Count >= 2)), "the endpoints did not start connecting: nothing to hold up");

        var watch = Stopwatch.StartNew();
        await source.DisposeAsync();
        await destination.DisposeAsync();

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(3), $"closing took {watch.Elapsed}: a warm-up still under way held it up");
        silent.Stop();
        await accepting;
        foreach (var client in accepted)
        {
            client.Dispose();
        }
    }

    private static async Task<bool> EventuallyAsync(Func<Task<bool>> condition)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < Patience)
        {
            if (await condition())
            {
                return true;
            }

            await Task.Delay(50);
        }

        return false;
    }
}
