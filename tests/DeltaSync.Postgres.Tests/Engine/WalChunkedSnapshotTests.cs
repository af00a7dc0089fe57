using System.Runtime.CompilerServices;
using DeltaSync.Core.Capture;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Postgres.Capture;
using DeltaSync.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using NodaTime;
using NpgsqlTypes;

namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>
/// The log capture's initial snapshot in key-ordered chunks interleaved with the log (low/high watermarks, the DBLog
/// approach), against a real PostgreSQL.
/// </summary>
public sealed class WalChunkedSnapshotTests
{
    // Even ids only: odd ones inserted meanwhile land inside the chunks' key ranges.
    private const string Accounts = """
        CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL DEFAULT 0, note text);
        INSERT INTO accounts (id, owner, balance) SELECT g * 2, 'owner ' || g, g FROM generate_series(1, {0}) g;
        """;

    private const string Dump = "SELECT id, owner, balance, note FROM accounts ORDER BY id";

    private static string Table(int rows) => Accounts.Replace("{0}", rows.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);

    private static Core.Config.SyncConfig Config(PgSyncWorkspace w, int chunkSize, int batchSize) =>
        w.Config("{name: accounts, cdc_method: changelog}", batchSize: batchSize, blocks: $"""
            cdc:
              changelog:
                type: postgres_wal
                snapshot_chunk_size: {chunkSize}
            """);

    [Fact]
    public async Task A_table_of_several_chunks_is_copied_chunk_by_chunk_under_concurrent_writes_and_ends_equal()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Table(6000));
        var config = Config(w, chunkSize: 700, batchSize: 250);
        using var stop = new CancellationTokenSource();
        var rounds = 0;
        var writer = Task.Run(async () =>
        {
            var random = new Random(4);
            while (!stop.IsCancellationRequested)
            {
                var n = Interlocked.Increment(ref rounds);
                var odd = random.Next(0, 6000) * 2 + 1;
                var even = random.Next(1, 6001) * 2;
                var other = random.Next(1, 6001) * 2;
                await w.Source.ExecuteAsync($"""
                    INSERT INTO accounts (id, owner) VALUES ({odd}, 'during {n}') ON CONFLICT (id) DO UPDATE SET note = 'again {n}';
                    UPDATE accounts SET balance = balance + 1, note = 'round {n}' WHERE id = {even};
                    DELETE FROM accounts WHERE id = {other};
                    INSERT INTO accounts (id, owner) VALUES ({20_000 + n}, 'after the end {n}');
                    """);
                if (n % 7 == 0)
                {
                    // One transaction touching a row already copied and one not copied yet (a key change included).
                    await w.Source.ExecuteAsync($"""
                        BEGIN;
                        UPDATE accounts SET note = 'pair {n}' WHERE id IN ({random.Next(1, 3001) * 2}, {random.Next(3001, 6001) * 2});
                        UPDATE accounts SET id = {100_000 + n} WHERE id = {random.Next(1, 6001) * 2};
                        COMMIT;
                        """);
                }
            }
        });

        var first = await w.RunCompletedAsync(config);
        var duringFirst = Volatile.Read(ref rounds);
        await stop.CancelAsync();
        await writer;
        var second = await w.RunCompletedAsync(config);

        Assert.True(duringFirst > 5, $"only {duringFirst} write rounds during the snapshot");
        Assert.Contains(first.Warnings, x => x.Contains("chunk(s) of up to 700 rows", StringComparison.Ordinal));
        Assert.DoesNotContain(second.Warnings, x => x.Contains("chunk(s)", StringComparison.Ordinal));
        Assert.StartsWith("wal:", second.Tables.Single().Position, StringComparison.Ordinal);
        await w.AssertSameAsync(Dump);
        var idle = await w.RunCompletedAsync(config);
        Assert.Equal(0, PgSyncWorkspace.Writes(idle));
    }

    [Fact]
    public async Task The_slot_confirms_the_log_between_chunks_so_it_holds_WAL_for_one_chunk_at_a_time()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Table(3000));
        var config = Config(w, chunkSize: 500, batchSize: 1000);
        var plan = TablePlan.FromConfig(config).Single();
        await using var source = await new PostgresConnector(SystemClock.Instance).OpenSourceAsync(config.Sync.Source, config, CancellationToken.None);
        var schema = await source.DescribeTableAsync(plan.ToTableOptions(), CancellationToken.None);
        var request = new CaptureRequest(plan, schema, Position.None, 1000, new EmptyLedger(), new LedgerScope("accounts", plan.SourceName), null)
        {
            // Every batch counts as applied as soon as it is handed over.
            WaitForApplied = _ => Task.CompletedTask,
        };

        var highs = new List<NpgsqlLogSequenceNumber>();
        var confirmedDuringSnapshot = new List<NpgsqlLogSequenceNumber>();
        await using (var capture = source.CreateCapture(request))
        {
            await foreach (var batch in capture.ReadAsync(CancellationToken.None))
            {
                if (!SnapshotPosition.TryParse(batch.CheckpointPosition, out _, out var log))
                {
                    continue;
                }

                // A chunk is emitted as one batch at its HIGH marker; reading on to the next chunk acknowledged it.
                if (highs.Count > 0)
                {
                    confirmedDuringSnapshot.Add(await ConfirmedAtLeastAsync(w, plan.SlotName, highs[^1]));
                }

                highs.Add(NpgsqlLogSequenceNumber.Parse(log.Value));
            }
        }

        Assert.Equal(6, highs.Count);
        Assert.Equal(5, confirmedDuringSnapshot.Count);
        for (var i = 0; i < confirmedDuringSnapshot.Count; i++)
        {
            Assert.True(confirmedDuringSnapshot[i] >= highs[i], $"after chunk {i + 1} the slot confirmed {confirmedDuringSnapshot[i]}, before its HIGH marker {highs[i]}");
        }

        Assert.True(confirmedDuringSnapshot[^1] > confirmedDuringSnapshot[0]);
    }

    [Fact]
    public async Task A_run_stopped_mid_snapshot_resumes_at_the_next_chunk_without_loss_or_duplicates()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Table(4000));
        var config = Config(w, chunkSize: 500, batchSize: 200);
        var clock = SystemClock.Instance;
        var engine = new SyncEngine(config, new ConnectorRegistry().Add(new SqliteConnector(clock)).Add(new PostgresConnector(clock)), clock, NullLogger.Instance);
        using var stop = new CancellationTokenSource();

        var stopped = await engine.RunOnceAsync(new RunOptions([], false, Path.Combine(w.Folder, "reports", "stopped.json")), new StopAfter(1300, stop), stop.Token);
        var position = stopped.Report.Tables.Single().Position;
        Assert.True(SnapshotPosition.TryParse(Position.Parse(position), out var lastKey, out _), $"stopped at {position}, not inside the snapshot");
        Assert.NotNull(lastKey);
        var copied = stopped.Report.Statistics.RecordsInserted;
        Assert.InRange(copied, 1000, 3000);

        // Changes before the restart, on both sides of where the snapshot stopped.
        await w.Source.ExecuteAsync("""
            UPDATE accounts SET note = 'copied, then changed' WHERE id IN (2, 4);
            UPDATE accounts SET note = 'changed before its chunk' WHERE id IN (7000, 7002);
            DELETE FROM accounts WHERE id IN (6, 7004);
            INSERT INTO accounts (id, owner) VALUES (1, 'new, copied part'), (7001, 'new, rest');
            """);
        var resumed = await w.RunCompletedAsync(config);

        await w.AssertSameAsync(Dump);
        Assert.Contains(resumed.Warnings, x => x.Contains("continuing an interrupted snapshot", StringComparison.Ordinal));
        // Every row inserted exactly once over the two runs: the 4000, less the one deleted before its chunk was
        // read, plus the two new ones. The resumed run starts after the last key the stopped one committed.
        Assert.Equal(4000 - 1 + 2, copied + resumed.Statistics.RecordsInserted);
        Assert.True(resumed.Statistics.RecordsDeleted >= 1);
        Assert.True(resumed.Statistics.RecordsProcessed < 4000 - 500, $"the resumed run read {resumed.Statistics.RecordsProcessed} records: it started over");
        var idle = await w.RunCompletedAsync(config);
        Assert.Equal(0, PgSyncWorkspace.Writes(idle));
    }

    [Fact]
    public async Task A_change_between_the_low_and_high_watermarks_wins_over_the_chunks_stale_copy()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Table(1000));
        var config = Config(w, chunkSize: 300, batchSize: 10_000);
        var plan = TablePlan.FromConfig(config).Single();
        await using var source = await new PostgresConnector(SystemClock.Instance).OpenSourceAsync(config.Sync.Source, config, CancellationToken.None);
        var schema = await source.DescribeTableAsync(plan.ToTableOptions(), CancellationToken.None);
        var request = new CaptureRequest(plan, schema, Position.None, 10_000, new EmptyLedger(), new LedgerScope("accounts", plan.SourceName), null);
        var events = new List<ChangeEvent>();
        var selections = 0;
        await using (var capture = (PostgresWalCapture)source.CreateCapture(request))
        {
            capture.ChunkSelected = async _ =>
            {
                // The first chunk (ids 2…600) is read; before its HIGH marker the source changes under it.
                if (++selections == 1)
                {
                    await w.Source.ExecuteAsync("""
                        UPDATE accounts SET note = 'fresh', balance = 0 WHERE id = 10;
                        DELETE FROM accounts WHERE id = 20;
                        INSERT INTO accounts (id, owner) VALUES (21, 'inside the chunk');
                        UPDATE accounts SET note = 'not copied yet' WHERE id = 900;
                        """);
                }
            };

            await foreach (var batch in capture.ReadAsync(CancellationToken.None))
            {
                events.AddRange(batch.Events);
            }
        }

        var id = schema.IndexOf("id");
        var note = schema.IndexOf("note");
        List<ChangeEvent> Of(long key)
        {
            var values = new object?[schema.Columns.Count];
            values[id] = key;
            var recordKey = schema.KeyOf(values);
            return events.Where(e => e.Key.Equals(recordKey)).ToList();
        }

        // The log's update is the only event of row 10: the chunk's stale copy was dropped, not emitted after it.
        var ten = Of(10);
        Assert.Single(ten);
        Assert.Equal("fresh", ten[0].Values![note]);
        Assert.Equal(ChangeOperation.Delete, Of(20).Single().Operation);
        Assert.Single(Of(21));
        // Row 900 is outside the first chunk: the log's update is applied, then its own chunk copies its newer state.
        Assert.Equal("not copied yet", Of(900)[^1].Values![note]);
        Assert.Equal(1000 - 1 + 1, events.Where(e => e.Operation != ChangeOperation.Delete).Select(e => e.Key).Distinct().Count());
        Assert.Equal(4, selections);
    }

    private static async Task<NpgsqlLogSequenceNumber> ConfirmedAtLeastAsync(PgSyncWorkspace w, string slot, NpgsqlLogSequenceNumber lsn)
    {
        // The walsender takes the acknowledgement in as it next reads from the connection: poll for it, bounded.
        for (var attempt = 0; ; attempt++)
        {
            var text = await w.Source.ScalarAsync<string>("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot);
            var confirmed = NpgsqlLogSequenceNumber.Parse(text!);
            if (confirmed >= lsn || attempt == 100)
            {
                return confirmed;
            }

            await Task.Delay(50);
        }
    }

    /// <summary>Stops the run once a table has processed this many records (reported after each committed batch).</summary>
    private sealed class StopAfter(long records, CancellationTokenSource stop) : IProgress<TableProgress>
    {
        public void Report(TableProgress value)
        {
            if (value.RecordsProcessed >= records)
            {
                stop.Cancel();
            }
        }
    }

    /// <summary>A destination that has applied nothing yet.</summary>
    private sealed class EmptyLedger : ILedger
    {
        public ValueTask<IReadOnlyDictionary<RecordKey, LedgerEntry>> LookupAsync(LedgerScope scope, IReadOnlyCollection<RecordKey> keys, CancellationToken cancellationToken) =>
            ValueTask.FromResult<IReadOnlyDictionary<RecordKey, LedgerEntry>>(new Dictionary<RecordKey, LedgerEntry>());

        public async IAsyncEnumerable<LedgerEntry> ScanAsync(LedgerScope scope, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.CompletedTask;
            yield break;
        }
    }
}
