using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using NodaTime;

namespace DeltaSync.Core.Tests.Pipeline;

public sealed class BatchApplierTests
{
    private static readonly Instant T0 = Instant.FromUtc(2026, 1, 1, 0, 0);
    private static readonly TableSchema Schema = new("items", [new ColumnSchema("id", "INTEGER", DataKind.Integer, false, 1), new ColumnSchema("total", "INTEGER", DataKind.Integer, true, 0)], ["id"]);
    private static readonly RetryOptions Fast = new(3, Duration.FromMilliseconds(1), Duration.FromMilliseconds(5), 50, Duration.FromSeconds(1));

    [Fact]
    public async Task A_refused_record_is_isolated_and_the_rest_of_the_batch_commits_before_the_checkpoint()
    {
        var destination = new RecordingDestination { Refuse = k => k is 7 or 13 };
        var applier = new BatchApplier(destination, Fast);

        var outcome = await applier.ApplyAsync(Unit(Enumerable.Range(1, 20)), DeadLetter, CancellationToken.None);

        Assert.Equal([7L, 13L], outcome.Isolated.Select(d => long.Parse(d.RecordId, System.Globalization.CultureInfo.InvariantCulture)).Order());
        Assert.All(outcome.Isolated, d => Assert.Contains("refused", d.Reason, StringComparison.Ordinal));
        Assert.Equal(Enumerable.Range(1, 20).Select(i => (long)i).Where(k => k is not (7 or 13)), destination.Rows.Order());
        Assert.Equal(18, outcome.Result.Inserted);
        Assert.Equal(18, destination.LedgerKeys.Count);
        Assert.DoesNotContain(7L, destination.LedgerKeys);
        Assert.True(destination.CheckpointCommittedLast, "the checkpoint must be committed after every part of the batch");
    }

    [Fact]
    public async Task Transient_failures_are_retried_and_counted()
    {
        var destination = new RecordingDestination { TransientFailures = 2 };
        var applier = new BatchApplier(destination, Fast);

        var outcome = await applier.ApplyAsync(Unit(Enumerable.Range(1, 5)), DeadLetter, CancellationToken.None);

        Assert.Equal(2, outcome.Retries);
        Assert.Contains("connection reset", outcome.LastRetriedError, StringComparison.Ordinal);
        Assert.Equal(5, destination.Rows.Count);
        Assert.Empty(outcome.Isolated);
    }

    [Fact]
    public async Task Transient_failures_beyond_the_limit_fail_the_batch_saying_how_often_it_tried()
    {
        var destination = new RecordingDestination { TransientFailures = 100 };
        var applier = new BatchApplier(destination, Fast);

        var error = await Assert.ThrowsAsync<SyncException>(() => applier.ApplyAsync(Unit([1]), DeadLetter, CancellationToken.None));

        Assert.Equal(ErrorClass.Transient, error.ErrorClass);
        Assert.Contains("gave up after 3 retries", error.Message, StringComparison.Ordinal);
        Assert.Equal(4, destination.Calls);
        Assert.Empty(destination.Rows);
    }

    [Fact]
    public async Task A_fatal_error_stops_at_once_without_splitting_or_retrying()
    {
        var destination = new RecordingDestination { Fatal = true };
        var applier = new BatchApplier(destination, Fast);

        await Assert.ThrowsAsync<SyncException>(() => applier.ApplyAsync(Unit(Enumerable.Range(1, 8)), DeadLetter, CancellationToken.None));

        Assert.Equal(1, destination.Calls);
    }

    [Fact]
    public async Task After_repeated_failures_the_circuit_opens_and_writes_fail_fast_for_every_table()
    {
        var options = new RetryOptions(0, Duration.FromMilliseconds(1), Duration.FromMilliseconds(1), 3, Duration.FromMinutes(5));
        var destination = new RecordingDestination { TransientFailures = int.MaxValue };
        var applier = new BatchApplier(destination, options);
        for (var i = 0; i < 3; i++)
        {
            await Assert.ThrowsAsync<SyncException>(() => applier.ApplyAsync(Unit([1]), DeadLetter, CancellationToken.None));
        }

        var calls = destination.Calls;
        var error = await Assert.ThrowsAsync<SyncException>(() => applier.ApplyAsync(Unit([2]), DeadLetter, CancellationToken.None));

        Assert.Equal(calls, destination.Calls);
        Assert.Contains("circuit open", error.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorClass.Transient, error.ErrorClass);
    }

    [Property(MaxTest = 200)]
    public Property Any_set_of_refused_records_is_isolated_exactly_and_everything_else_is_applied()
    {
        var cases =
            from count in Gen.Choose(1, 120)
            from size in Gen.Choose(0, Math.Min(count, 10))
            from refused in Gen.ListOf(Gen.Choose(1, count), size)
            select (count, refused: refused.Distinct().ToHashSet());
        return Prop.ForAll(
            cases.ToArbitrary(),
            c =>
            {
                var destination = new RecordingDestination { Refuse = k => c.refused.Contains((int)k) };
                var applier = new BatchApplier(destination, Fast);
                var outcome = applier.ApplyAsync(Unit(Enumerable.Range(1, c.count)), DeadLetter, CancellationToken.None).GetAwaiter().GetResult();

                var expected = Enumerable.Range(1, c.count).Where(k => !c.refused.Contains(k)).Select(k => (long)k).ToList();
                return destination.Rows.Order().SequenceEqual(expected)
                    && outcome.Isolated.Count == c.refused.Count
                    && destination.CheckpointCommittedLast
                    && destination.LedgerKeys.Order().SequenceEqual(expected);
            });
    }

    private static ApplyUnit Unit(IEnumerable<int> keys)
    {
        var writes = keys.Select(k => new RowWrite(WriteKind.Insert, new RecordKey([(long)k]), [(long)k, (long)k * 10])).ToList();
        var ledger = writes.Select(w => new LedgerEntry(w.Key, new Position("test", "1"), T0, 1, false)).ToList();
        var checkpoint = new Checkpoint("s/items", "items", 2, new Position("test", "9"), "timestamp", T0, T0, "fp", CheckpointCounters.Zero, 0, "run", T0);
        return new ApplyUnit(Schema, "items", new LedgerScope("items", "source"), writes, ledger, checkpoint);
    }

    private static DeadLetter DeadLetter(RowWrite write, string reason) =>
        new("s/items", "items", write.Key.ToString(), "{}", reason, ErrorClass.Permanent, Position.None, T0);

    /// <summary>
    /// A destination that applies units atomically in memory and refuses some records, to exercise the applier's
    /// decisions; the real destinations are exercised by the SQLite and PostgreSQL end-to-end tests.
    /// </summary>
    private sealed class RecordingDestination : IDestination
    {
        public Func<long, bool> Refuse { get; init; } = _ => false;
        public int TransientFailures { get; set; }
        public bool Fatal { get; init; }
        public int Calls { get; private set; }
        public List<long> Rows { get; } = [];
        public HashSet<long> LedgerKeys { get; } = [];
        public bool CheckpointCommittedLast { get; private set; }

        public ILedger Ledger => throw new NotSupportedException();

        public Task<ApplyResult> ApplyAsync(ApplyUnit unit, CancellationToken cancellationToken)
        {
            Calls++;
            if (Fatal)
            {
                throw new SyncException(ErrorClass.Fatal, "permission denied for table items");
            }

            if (TransientFailures > 0)
            {
                TransientFailures--;
                throw new SyncException(ErrorClass.Transient, "connection reset by peer");
            }

            var keys = unit.Writes.Select(w => (long)w.Key.Values[0]!).ToList();
            if (keys.Any(Refuse))
            {
                throw new SyncException(ErrorClass.Permanent, "row refused by CHECK (total >= 0)");
            }

            // A part committed after the checkpoint would mean the checkpoint was ahead of the data.
            if (CheckpointCommittedLast && keys.Count > 0)
            {
                CheckpointCommittedLast = false;
            }

            Rows.AddRange(keys);
            foreach (var entry in unit.LedgerUpdates)
            {
                LedgerKeys.Add((long)entry.Key.Values[0]!);
            }

            if (unit.CommitsCheckpoint)
            {
                CheckpointCommittedLast = true;
            }

            return Task.FromResult(new ApplyResult(keys.Count, 0, 0));
        }

        public Task<TableEvolution> PrepareTableAsync(string destinationTable, TableSchema sourceSchema, CancellationToken cancellationToken) => Task.FromResult(TableEvolution.None);

        public Task<string?> ReadCommittedCheckpointAsync(string stream, CancellationToken cancellationToken) => Task.FromResult<string?>(null);

        public Task ResetStreamAsync(string stream, LedgerScope scope, CancellationToken cancellationToken) => Task.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
