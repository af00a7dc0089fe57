using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using DeltaSync.Postgres.Capture;
using DeltaSync.Postgres.Source;
using Npgsql;
using NodaTime;

namespace DeltaSync.Postgres.Destination;

/// <summary>
/// PostgreSQL → PostgreSQL initial load at COPY speed: the source's raw binary <c>COPY … TO STDOUT</c> is relayed, byte
/// for byte and in 64 KiB chunks, into <c>COPY … FROM STDIN</c> here — no value is decoded or encoded on the way — and
/// the ledger's entries for the copied rows are recorded as one rule over the table (<see cref="BulkLedgerRows"/>), not
/// row by row, in the same transaction as the checkpoint (fenced by the lease's epoch). Taken only for an empty table
/// with no ledger entries in the scope and column types identical on both sides; anything else is left to the pipeline.
/// </summary>
/// <remarks>
/// Crash safety: everything commits at once. Killed before the commit, the transaction rolls back and the table is
/// empty again, so the next run loads it afresh; killed after, the destination holds the checkpoint and the next run
/// resumes from it (recovering it into the state store). Nothing is written twice either way. The ledger's row hashes
/// are PostgreSQL's own digests of the copied rows (<see cref="PostgresRowMapper.DigestSql"/>), marked as such, and the
/// scope is flagged so that its captures compute the same digest for the rows they read (<see cref="PostgresLedger"/>).
/// </remarks>
internal sealed partial class PostgresDestination
{
    private const int CopyChunkBytes = 1 << 16;

    public Task<BulkLoadOutcome> TryBulkLoadAsync(ISource source, BulkLoadRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (source is not PostgresSource postgres)
        {
            return Task.FromResult(BulkLoadOutcome.Skipped("the source is not PostgreSQL"));
        }

        if (postgres.SnapshotCopy(request.Capture, out var reason) is not { } copy)
        {
            return Task.FromResult(BulkLoadOutcome.Skipped(reason));
        }

        var table = request.Capture.Plan.DestinationTable;
        return WithTableAsync(
            table,
            async connection =>
            {
                if (PreparedWriter(table) is not { } writer)
                {
                    return BulkLoadOutcome.Skipped("the destination table was not prepared");
                }

                if (connection.PostgreSqlVersion.Major < 14)
                {
                    // Commit times are computed with extract(epoch …), exact (numeric) only from 14 on.
                    return BulkLoadOutcome.Skipped($"the destination runs PostgreSQL {connection.PostgreSqlVersion}; the bulk load needs 14 or later");
                }

                if (Mismatch(copy.Mapper, writer) is { } mismatch)
                {
                    return BulkLoadOutcome.Skipped(mismatch);
                }

                var scopeId = await ScopeIdAsync(connection, request.Capture.Scope, cancellationToken).ConfigureAwait(false);
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    var outcome = await LoadAsync(connection, transaction, copy, writer.Target, scopeId, request, cancellationToken).ConfigureAwait(false);
                    if (outcome.Committed is null)
                    {
                        await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
                        return outcome;
                    }

                    await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                    return outcome;
                }
                catch (Exception e) when (e is NpgsqlException or SyncException or TimeoutException or IOException)
                {
                    await RollbackIfOpenAsync(connection, transaction).ConfigureAwait(false);

                    if (e is SyncException)
                    {
                        throw;
                    }

                    throw PostgresConnectionFactory.Classify(e, $"cannot bulk load destination table '{table}'");
                }
                finally
                {
                    // The scope's rule and largest key are cached; the ledger gained (or, rolled back, did not gain) a whole table.
                    _ledger.Invalidate(scopeId);
                    _ledger.ForgetRules(table);
                }
            },
            cancellationToken);
    }

    private async Task<BulkLoadOutcome> LoadAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, PostgresSnapshotCopy copy, PgTable target, int scopeId, BulkLoadRequest request, CancellationToken cancellationToken)
    {
        // No one writes the table between the emptiness check and the commit (readers are not blocked).
        await ExecuteAsync(connection, transaction, $"LOCK TABLE {target.QualifiedName} IN EXCLUSIVE MODE", cancellationToken).ConfigureAwait(false);
        await using (var empty = new NpgsqlCommand(
            $"SELECT EXISTS (SELECT 1 FROM {target.QualifiedName}) OR EXISTS (SELECT 1 FROM {PostgresSql.Qualified(Schema, "ledger")} WHERE scope_id = $1)",
            connection,
            transaction))
        {
            empty.Parameters.Add(new NpgsqlParameter<int> { TypedValue = scopeId });
            if (await empty.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is true)
            {
                return BulkLoadOutcome.Skipped("the destination table already has rows or ledger entries");
            }
        }

        var columns = PostgresSql.ColumnList(copy.Mapper.Schema.Columns.Select(c => copy.Mapper.Column(c.Name).Name));
        var rules = copy.LedgerRows(target);
        var future = request.FutureLimit is { } limit ? limit.ToUnixTimeTicks() / 10 : long.MaxValue;
        var tally = BinaryCopyTally.For(rules, name => copy.Mapper.Column(name).BaseType, future);
        Position done;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await using (var snapshot = await copy.BeginAsync(cancellationToken).ConfigureAwait(false))
        {
            if (snapshot.Connection.PostgreSqlVersion.Major < 14)
            {
                // Its captures compute the row digest with hash_record_extended, new in 14.
                return BulkLoadOutcome.Skipped($"the source runs PostgreSQL {snapshot.Connection.PostgreSqlVersion}; the bulk load needs 14 or later");
            }

            await using (var reader = await snapshot.Connection.BeginRawBinaryCopyAsync(copy.CopyOutSql, cancellationToken).ConfigureAwait(false))
            {
                await using var writer = await connection.BeginRawBinaryCopyAsync($"COPY {target.QualifiedName} ({columns}) FROM STDIN (FORMAT binary)", cancellationToken).ConfigureAwait(false);
                try
                {
                    // Disposing the writer ends the COPY and waits for the server to accept it.
                    await RelayAsync(reader, writer, tally, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // Not a partial table: the server discards what this COPY received (and the transaction rolls back).
                    try
                    {
                        await writer.CancelAsync().ConfigureAwait(false);
                    }
                    catch (Exception cancel) when (cancel is NpgsqlException or IOException or InvalidOperationException)
                    {
                        // The connection is already broken; the original failure is the one to report.
                    }

                    throw;
                }
            }

            await snapshot.Transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            done = snapshot.Done;
        }

        var copied = watch.Elapsed;
        watch.Restart();
        var stats = await RecordLedgerAsync(connection, transaction, rules, tally, scopeId, future, done, cancellationToken).ConfigureAwait(false) with
        {
            CopyTime = copied,
            LedgerTime = watch.Elapsed,
        };
        var checkpoint = request.CheckpointFor(stats);
        if (!await CommitCheckpointAsync(connection, transaction, checkpoint, commits: true, cancellationToken).ConfigureAwait(false))
        {
            throw new SyncException(
                ErrorClass.Fatal,
                $"stale writer: another worker with a newer lease (epoch > {checkpoint.Epoch}) has committed to '{request.Capture.Plan.DestinationTable}'; this worker's bulk load was refused and rolled back");
        }

        return new BulkLoadOutcome(stats, checkpoint, null);
    }

    /// <summary>The source's COPY stream into the destination's, chunk by chunk, counted on the way when it can be.</summary>
    private static async Task RelayAsync(Stream reader, Stream writer, BinaryCopyTally? tally, CancellationToken cancellationToken)
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(CopyChunkBytes);
        try
        {
            int read;
            while ((read = await reader.ReadAsync(buffer.AsMemory(0, CopyChunkBytes), cancellationToken).ConfigureAwait(false)) > 0)
            {
                try
                {
                    tally?.Feed(buffer.AsSpan(0, read));
                }
                catch (InvalidDataException e)
                {
                    throw new IOException(e.Message, e);
                }

                await writer.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }

        if (tally is { Complete: false })
        {
            throw new IOException("the source's COPY stream ended before its end marker");
        }
    }

    /// <summary>
    /// Records the copied rows' ledger entries as a rule (<see cref="BulkLedgerRows"/>) rather than writing one row per
    /// entry, with what the report and the checkpoint need: counted while the rows streamed through
    /// (<paramref name="tally"/>), or else by one aggregate over the copied table.
    /// </summary>
    private async Task<BulkLoadStats> RecordLedgerAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, BulkLedgerRows rows, BinaryCopyTally? tally, int scopeId, long future, Position done, CancellationToken cancellationToken)
    {
        await using (var record = new NpgsqlCommand($"UPDATE {PostgresSql.Qualified(Schema, "ledger_scopes")} SET source_digests = true, bulk_rows = $2 WHERE scope_id = $1", connection, transaction))
        {
            record.Parameters.Add(new NpgsqlParameter<int> { TypedValue = scopeId });
            record.Parameters.Add(new NpgsqlParameter<string> { TypedValue = rows.Serialize() });
            await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        var counts = tally is null ? await CountAsync(connection, transaction, rows, future, cancellationToken).ConfigureAwait(false)
            : (tally.Rows, tally.Newest, tally.NullCursor, tally.FutureRows, tally.NewestFuture, tally.CreatedAtFallback);
        return new BulkLoadStats(counts.Rows, done, Micros(counts.Newest))
        {
            NullCursorRows = counts.NullCursor,
            CreatedAtFallbackRows = counts.CreatedAtFallback,
            FutureRows = counts.FutureRows,
            NewestFuture = Micros(counts.NewestFuture),
        };
    }

    /// <summary>What the stream tally counts, counted instead by aggregates over the copied table.</summary>
    private static async Task<(long Rows, long? Newest, long NullCursor, long FutureRows, long? NewestFuture, long CreatedAtFallback)> CountAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, BulkLedgerRows rows, long future, CancellationToken cancellationToken)
    {
        var sql = $"""
            SELECT count(*), max(commit_us), count(*) FILTER (WHERE {rows.NullCursorSql}),
                   count(*) FILTER (WHERE commit_us > $1), max(commit_us) FILTER (WHERE commit_us > $1)
            FROM (SELECT {rows.PositionSql("t")} AS position, {rows.CommitSql("t")} AS commit_us FROM {rows.QualifiedTable} t) entries
            """;
        long count, nullCursor, futureRows;
        long? newest, newestFuture;
        await using (var command = new NpgsqlCommand(sql, connection, transaction))
        {
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = future });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            count = reader.GetInt64(0);
            newest = reader.IsDBNull(1) ? null : reader.GetInt64(1);
            nullCursor = reader.GetInt64(2);
            futureRows = reader.GetInt64(3);
            newestFuture = reader.IsDBNull(4) ? null : reader.GetInt64(4);
        }

        var fallback = 0L;
        if (rows.CreatedAtFallbackSql is { } fallbackSql)
        {
            await using var command = new NpgsqlCommand(fallbackSql, connection, transaction);
            fallback = (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }

        return (count, newest, nullCursor, futureRows, newestFuture, fallback);
    }

    /// <summary>Why the source's columns cannot pass through as binary into the destination's, or null when they can.</summary>
    private static string? Mismatch(PostgresRowMapper source, PostgresTableWriter writer)
    {
        foreach (var column in source.Schema.Columns)
        {
            var from = source.Column(column.Name);
            // The ledger's SQL names the columns as the source spells them.
            var to = writer.Target.Columns.FirstOrDefault(t => string.Equals(t.Name, from.Name, StringComparison.Ordinal));
            if (to is null)
            {
                return $"column '{from.Name}' is not spelled the same at the destination";
            }

            if (to.IsGenerated)
            {
                // COPY cannot write it; the pipeline's writer leaves it to the destination's expression.
                return $"column '{to.Name}' is generated at the destination";
            }

            // format_type's spelling includes the type modifier (numeric(12,2), varchar(40)) and array brackets.
            if (!string.Equals(from.TypeName, to.TypeName, StringComparison.Ordinal))
            {
                return $"column '{column.Name}' is {from.TypeName} at the source and {to.TypeName} at the destination";
            }
        }

        return null;
    }

    /// <summary>The writer <see cref="PrepareTableAsync"/> made for the table in this process, or null.</summary>
    private PostgresTableWriter? PreparedWriter(string destinationTable) =>
        _tables.TryGetValue(destinationTable, out var slot) ? slot.Writer : null;

    private static Instant? Micros(long? micros) => micros is { } m ? Instant.FromUnixTimeTicks(m * 10) : null;

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
