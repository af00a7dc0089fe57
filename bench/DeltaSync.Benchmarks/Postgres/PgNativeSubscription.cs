using System.Diagnostics;
using DeltaSync.Postgres;
using Npgsql;

namespace DeltaSync.Benchmarks.Postgres;

/// <summary>
/// A native logical replication subscription of the source's <c>items</c> that stays in place while changes stream:
/// set up as in <see cref="PgCopyAnchors.LogicalReplicationInitialCopyAsync"/> (slot created separately, because source
/// and destination share a cluster), ready once the table reaches state <c>r</c>. Disposing removes the subscription,
/// its slot and the publication.
/// </summary>
public sealed class PgNativeSubscription : IAsyncDisposable
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromMinutes(10);

    private readonly NpgsqlConnection _publisher;
    private readonly NpgsqlConnection _subscriber;
    private readonly string _name;
    private bool _subscribed;

    private PgNativeSubscription(NpgsqlConnection publisher, NpgsqlConnection subscriber, string name)
    {
        _publisher = publisher;
        _subscriber = subscriber;
        _name = name;
    }

    /// <summary>Creates the table at the destination, the publication, the slot and the subscription, and waits for state <c>r</c>.</summary>
    public static async Task<PgNativeSubscription> StartAsync(BenchmarkDatabase source, BenchmarkDatabase destination, string name, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        var subscription = new PgNativeSubscription(
            await source.OpenAsync(cancellationToken).ConfigureAwait(false),
            await destination.OpenAsync(cancellationToken).ConfigureAwait(false),
            name);
        try
        {
            await subscription.SubscribeAsync(source, cancellationToken).ConfigureAwait(false);
            return subscription;
        }
        catch
        {
            await subscription.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await PgCopyAnchors.RemoveAsync(_publisher, _subscriber, _name, _subscribed).ConfigureAwait(false);
        }
        finally
        {
            await _subscriber.DisposeAsync().ConfigureAwait(false);
            await _publisher.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task SubscribeAsync(BenchmarkDatabase source, CancellationToken cancellationToken)
    {
        var quoted = PostgresSql.Quote(_name);
        await PgCopyAnchors.ExecuteAsync(_subscriber, PgItemsTable.CreateTableSql, cancellationToken).ConfigureAwait(false);
        await PgCopyAnchors.ExecuteAsync(_publisher, $"CREATE PUBLICATION {quoted} FOR TABLE {PgItemsTable.Table}", cancellationToken).ConfigureAwait(false);
        await PgCopyAnchors.ExecuteAsync(_publisher, $"SELECT pg_create_logical_replication_slot({PgCopyAnchors.Literal(_name)}, 'pgoutput')", cancellationToken).ConfigureAwait(false);
        await PgCopyAnchors.ExecuteAsync(
            _subscriber,
            $"CREATE SUBSCRIPTION {quoted} CONNECTION {PgCopyAnchors.Literal(PgCopyAnchors.ConnectionInfo(source))} PUBLICATION {quoted} " +
            $"WITH (create_slot = false, slot_name = {PgCopyAnchors.Literal(_name)}, copy_data = true)",
            cancellationToken).ConfigureAwait(false);
        _subscribed = true;

        var watch = Stopwatch.StartNew();
        await using var state = new NpgsqlCommand(
            "SELECT r.srsubstate FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid WHERE s.subname = $1",
            _subscriber);
        state.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _name });
        while (await state.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as char? is not 'r')
        {
            if (watch.Elapsed > ReadyTimeout)
            {
                throw new TimeoutException($"subscription {_name}: table not ready after {ReadyTimeout.TotalMinutes} minutes; check the server log");
            }

            await Task.Delay(PollInterval, cancellationToken).ConfigureAwait(false);
        }
    }
}
