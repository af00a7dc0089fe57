using System.Diagnostics;
using Npgsql;

namespace DeltaSync.Benchmarks.Postgres;

/// <summary>(b) WAL catch-up: how long until the destination holds every update.</summary>
/// <param name="Transactions">Committed at the source, one after the other by one connection.</param>
/// <param name="Writing">From the first update to the last commit at the source.</param>
/// <param name="CaughtUp">From the first update until the destination's <c>sum(price)</c> equalled the source's final sum.</param>
public sealed record CatchUpResult(int Transactions, long Rows, TimeSpan Writing, TimeSpan CaughtUp, string Check);

/// <summary>(c) Lag under a steady load, sampled at the destination.</summary>
/// <param name="Changes">Single-row updates committed at the source.</param>
/// <param name="Writing">How long the load ran.</param>
/// <param name="LagSeconds">Every sample of the destination's lag, in seconds.</param>
/// <param name="DrainedAfter">From the end of the load until the destination equalled the source.</param>
public sealed record SteadyLoadResult(long Changes, TimeSpan Writing, IReadOnlyList<double> LagSeconds, TimeSpan DrainedAfter, string Check)
{
    public double Rate => Changes / Writing.TotalSeconds;

    /// <summary>Nearest-rank percentile of the samples.</summary>
    public double Percentile(double percent)
    {
        var sorted = LagSeconds.Order().ToList();
        var rank = (int)Math.Ceiling(percent / 100 * sorted.Count);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Count - 1)];
    }
}

/// <summary>
/// The two streaming workloads, written to the source while a consumer (native logical replication or DeltaSync
/// <c>run --follow</c>) applies them to its destination. Both only read the destination, so either consumer is
/// measured the same way.
/// </summary>
public static class PgStreamLoad
{
    public const int CatchUpTransactionRows = 100;
    private static readonly TimeSpan CatchUpPoll = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan LagSampleInterval = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromMinutes(5);

    /// <summary>
    /// <c>UPDATE items SET price = price + 1 WHERE id BETWEEN x AND x + 99</c> for x = 1, 101, … up to
    /// <paramref name="rows"/>, each its own transaction, executed back to back by one connection. Every row's price
    /// grows by exactly 1, so the destination holds all of them exactly when its <c>sum(price)</c> reaches the
    /// source's sum before plus <paramref name="rows"/>: the destination is polled for that every 10 ms from the first
    /// update on. The full checksum is compared afterwards.
    /// </summary>
    public static async Task<CatchUpResult> CatchUpAsync(BenchmarkDatabase source, BenchmarkDatabase destination, long rows, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        await using var writer = await source.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var reader = await destination.OpenAsync(cancellationToken).ConfigureAwait(false);
        var target = await SumOfPricesAsync(writer, cancellationToken).ConfigureAwait(false) + rows;
        await using var update = new NpgsqlCommand($"UPDATE {PgItemsTable.Table} SET price = price + 1 WHERE id BETWEEN $1 AND $1 + {CatchUpTransactionRows - 1}", writer);
        var first = new NpgsqlParameter<long>();
        update.Parameters.Add(first);
        await update.PrepareAsync(cancellationToken).ConfigureAwait(false);

        var watch = Stopwatch.StartNew();
        var polling = WaitForSumAsync(reader, target, watch, cancellationToken);
        var transactions = 0;
        for (var x = 1L; x <= rows; x += CatchUpTransactionRows)
        {
            first.TypedValue = x;
            await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            transactions++;
        }

        var writing = watch.Elapsed;
        var caughtUp = await polling.ConfigureAwait(false);
        var check = PgTableChecksum.Compare(
            await PgTableChecksum.ComputeAsync(source, cancellationToken).ConfigureAwait(false),
            await PgTableChecksum.ComputeAsync(destination, cancellationToken).ConfigureAwait(false));
        return new CatchUpResult(transactions, rows, writing, caughtUp, check);
    }

    /// <summary>
    /// Single-row autocommit updates <c>SET updated_at = clock_timestamp()</c> of random rows, paced to
    /// <paramref name="perSecond"/> for <paramref name="duration"/> by one connection. Every 100 ms a second connection
    /// asks the destination <c>clock_timestamp() - max(updated_at)</c> (one cluster, one clock): how long ago the newest
    /// change the destination holds was made at the source. Before any change arrived the load's start stands in
    /// for it, so a destination that has nothing yet counts as behind by the load's age.
    /// </summary>
    public static async Task<SteadyLoadResult> SteadyLoadAsync(
        BenchmarkDatabase source, BenchmarkDatabase destination, long rows, int perSecond, TimeSpan duration, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        await using var writer = await source.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var update = new NpgsqlCommand($"UPDATE {PgItemsTable.Table} SET updated_at = clock_timestamp() WHERE id = $1", writer);
        var id = new NpgsqlParameter<long>();
        update.Parameters.Add(id);
        await update.PrepareAsync(cancellationToken).ConfigureAwait(false);
        await using var clock = new NpgsqlCommand("SELECT clock_timestamp()", writer);
        var start = (DateTime)(await clock.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;

        using var stopSampling = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var sampling = SampleLagAsync(destination, start, stopSampling.Token);
        var random = new Random(20_240_601);
        var watch = Stopwatch.StartNew();
        long changes = 0;
        while (watch.Elapsed < duration)
        {
            var due = (long)(watch.Elapsed.TotalSeconds * perSecond);
            if (changes >= due)
            {
                await Task.Delay(1, cancellationToken).ConfigureAwait(false);
                continue;
            }

            id.TypedValue = random.NextInt64(1, rows + 1);
            await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            changes++;
        }

        var writing = watch.Elapsed;
        await stopSampling.CancelAsync().ConfigureAwait(false);
        var lags = await sampling.ConfigureAwait(false);

        var expected = await PgTableChecksum.ComputeAsync(source, cancellationToken).ConfigureAwait(false);
        var drain = Stopwatch.StartNew();
        var check = "";
        while (drain.Elapsed < DrainTimeout)
        {
            var copy = await PgTableChecksum.ComputeAsync(destination, cancellationToken).ConfigureAwait(false);
            check = PgTableChecksum.Compare(expected, copy);
            if (copy == expected)
            {
                break;
            }

            await Task.Delay(CatchUpPoll, cancellationToken).ConfigureAwait(false);
        }

        return new SteadyLoadResult(changes, writing, lags, drain.Elapsed, check);
    }

    private static async Task<decimal> SumOfPricesAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var sum = new NpgsqlCommand($"SELECT coalesce(sum(price), 0) FROM {PgItemsTable.Table}", connection);
        return (decimal)(await sum.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    private static async Task<TimeSpan> WaitForSumAsync(NpgsqlConnection reader, decimal target, Stopwatch watch, CancellationToken cancellationToken)
    {
        while (await SumOfPricesAsync(reader, cancellationToken).ConfigureAwait(false) != target)
        {
            if (watch.Elapsed > DrainTimeout)
            {
                throw new TimeoutException($"the destination did not catch up within {DrainTimeout.TotalMinutes} minutes");
            }

            await Task.Delay(CatchUpPoll, cancellationToken).ConfigureAwait(false);
        }

        return watch.Elapsed;
    }

    private static async Task<List<double>> SampleLagAsync(BenchmarkDatabase destination, DateTime start, CancellationToken stop)
    {
        var lags = new List<double>();
        await using var reader = await destination.OpenAsync(CancellationToken.None).ConfigureAwait(false);
        await using var lag = new NpgsqlCommand(
            $"SELECT extract(epoch FROM clock_timestamp() - greatest(max(updated_at), $1))::float8 FROM {PgItemsTable.Table}", reader);
        lag.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = start });
        using var timer = new PeriodicTimer(LagSampleInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                lags.Add((double)(await lag.ExecuteScalarAsync(CancellationToken.None).ConfigureAwait(false))!);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }

        return lags;
    }
}
