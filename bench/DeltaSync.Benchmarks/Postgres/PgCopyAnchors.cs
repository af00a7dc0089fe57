using System.Diagnostics;
using System.Text;
using DeltaSync.Postgres;
using Npgsql;

namespace DeltaSync.Benchmarks.Postgres;

/// <summary>How long PostgreSQL's own native logical replication took for its initial copy.</summary>
/// <param name="Ready">Until <c>pg_subscription_rel</c> showed the table ready (<c>r</c>): the anchor.</param>
/// <param name="DataCommitted">Until it first showed the copy committed (<c>f</c>, <c>s</c> or <c>r</c>): the rows are visible from then on.</param>
public sealed record NativeCopyTimes(TimeSpan Ready, TimeSpan DataCommitted);

/// <summary>
/// The two ways PostgreSQL itself copies a table into another database, timed in-process (no runtime start-up), each
/// into a fresh database. Both start by creating the destination table with the source's definition (primary key, no
/// other index), as DeltaSync creates it, and that is inside the timing, as it is for DeltaSync.
/// </summary>
public static class PgCopyAnchors
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan NativeTimeout = TimeSpan.FromMinutes(30);

    /// <summary>
    /// <c>COPY items TO STDOUT (FORMAT binary)</c> on the source streamed byte for byte into
    /// <c>COPY items FROM STDIN (FORMAT binary)</c> on the destination: the floor for moving the rows through a client.
    /// </summary>
    public static async Task<TimeSpan> BinaryCopyPipeAsync(BenchmarkDatabase source, BenchmarkDatabase destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        var watch = Stopwatch.StartNew();
        await using var from = await source.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var to = await destination.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (var create = new NpgsqlCommand(PgItemsTable.CreateTableSql, to))
        {
            await create.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using (var reader = await from.BeginRawBinaryCopyAsync($"COPY {PgItemsTable.Table} ({PgItemsTable.Columns}) TO STDOUT (FORMAT binary)", cancellationToken).ConfigureAwait(false))
        {
            // Disposing the writer ends the COPY and waits for the server to confirm it: still inside the timing.
            await using var writer = await to.BeginRawBinaryCopyAsync($"COPY {PgItemsTable.Table} ({PgItemsTable.Columns}) FROM STDIN (FORMAT binary)", cancellationToken).ConfigureAwait(false);
            await reader.CopyToAsync(writer, 1 << 16, cancellationToken).ConfigureAwait(false);
        }

        watch.Stop();
        return watch.Elapsed;
    }

    /// <summary>
    /// Native logical replication's initial copy: <c>CREATE PUBLICATION</c> on the source, then
    /// <c>CREATE SUBSCRIPTION … WITH (copy_data = true)</c> on the destination, timed until the table is ready.
    /// The subscription, its slot and the publication are removed afterwards (not timed).
    /// </summary>
    /// <remarks>
    /// Source and destination are in one cluster, where <c>CREATE SUBSCRIPTION</c> would wait forever for its own
    /// transaction if it created the slot itself (PostgreSQL documentation, CREATE SUBSCRIPTION, notes); the slot is
    /// therefore created just before it, on the source, inside the timing.
    /// </remarks>
    public static async Task<NativeCopyTimes> LogicalReplicationInitialCopyAsync(BenchmarkDatabase source, BenchmarkDatabase destination, string name, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        var quoted = PostgresSql.Quote(name);
        var watch = Stopwatch.StartNew();
        await using var publisher = await source.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var subscriber = await destination.OpenAsync(cancellationToken).ConfigureAwait(false);
        var subscribed = false;
        try
        {
            await ExecuteAsync(subscriber, PgItemsTable.CreateTableSql, cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(publisher, $"CREATE PUBLICATION {quoted} FOR TABLE {PgItemsTable.Table}", cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(publisher, $"SELECT pg_create_logical_replication_slot({Literal(name)}, 'pgoutput')", cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(
                subscriber,
                $"CREATE SUBSCRIPTION {quoted} CONNECTION {Literal(ConnectionInfo(source))} PUBLICATION {quoted} " +
                $"WITH (create_slot = false, slot_name = {Literal(name)}, copy_data = true)",
                cancellationToken).ConfigureAwait(false);
            subscribed = true;

            TimeSpan? committed = null;
            await using var state = new NpgsqlCommand(
                "SELECT r.srsubstate FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid WHERE s.subname = $1",
                subscriber);
            state.Parameters.Add(new NpgsqlParameter<string> { TypedValue = name });
            while (true)
            {
                var code = await state.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as char? ?? '?';
                if (code is 'f' or 's' or 'r')
                {
                    committed ??= watch.Elapsed;
                }

                if (code == 'r')
                {
                    watch.Stop();
                    return new NativeCopyTimes(watch.Elapsed, committed ?? watch.Elapsed);
                }

                if (watch.Elapsed > NativeTimeout)
                {
                    throw new TimeoutException($"subscription {name}: table not ready after {NativeTimeout.TotalMinutes} minutes (state '{code}'); check the server log");
                }

                await Task.Delay(PollInterval, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            await RemoveAsync(publisher, subscriber, name, subscribed).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Detaches the subscription from its slot and drops it, then drops the slot once the walsender that served it has
    /// exited (an active slot cannot be dropped, and the walsender ends a moment after the subscription is disabled),
    /// then the publication.
    /// </summary>
    internal static async Task RemoveAsync(NpgsqlConnection publisher, NpgsqlConnection subscriber, string name, bool subscribed)
    {
        var quoted = PostgresSql.Quote(name);
        if (subscribed)
        {
            await ExecuteAsync(subscriber, $"ALTER SUBSCRIPTION {quoted} DISABLE", CancellationToken.None).ConfigureAwait(false);
            await ExecuteAsync(subscriber, $"ALTER SUBSCRIPTION {quoted} SET (slot_name = NONE)", CancellationToken.None).ConfigureAwait(false);
            await ExecuteAsync(subscriber, $"DROP SUBSCRIPTION {quoted}", CancellationToken.None).ConfigureAwait(false);
        }

        var waited = Stopwatch.StartNew();
        await using var active = new NpgsqlCommand("SELECT active FROM pg_replication_slots WHERE slot_name = $1", publisher);
        active.Parameters.Add(new NpgsqlParameter<string> { TypedValue = name });
        while (await active.ExecuteScalarAsync(CancellationToken.None).ConfigureAwait(false) is bool isActive)
        {
            if (!isActive)
            {
                await ExecuteAsync(publisher, $"SELECT pg_drop_replication_slot({Literal(name)})", CancellationToken.None).ConfigureAwait(false);
                break;
            }

            if (waited.Elapsed > TimeSpan.FromMinutes(1))
            {
                // Dropping the source database at the end drops the slot with it.
                Console.Error.WriteLine($"# replication slot {name} still active after a minute; left for the final clean-up");
                break;
            }

            await Task.Delay(PollInterval, CancellationToken.None).ConfigureAwait(false);
        }

        await ExecuteAsync(publisher, $"DROP PUBLICATION IF EXISTS {quoted}", CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>A libpq connection string for the subscription: each value single-quoted, backslashes and quotes escaped.</summary>
    internal static string ConnectionInfo(BenchmarkDatabase database)
    {
        var builder = new NpgsqlConnectionStringBuilder(database.ConnectionString);
        var text = new StringBuilder();
        void Add(string key, string? value)
        {
            if (!string.IsNullOrEmpty(value))
            {
                text.Append(key).Append("='").Append(value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal)).Append("' ");
            }
        }

        Add("host", builder.Host);
        Add("port", builder.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Add("dbname", builder.Database);
        Add("user", builder.Username);
        Add("password", builder.Password);
        return text.ToString().TrimEnd();
    }

    /// <summary>A SQL string literal, for the DDL that takes no parameters.</summary>
    internal static string Literal(string value) => "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";

    internal static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
