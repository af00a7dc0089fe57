using System.Globalization;
using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;

namespace DeltaSync.Core.Pipeline;

/// <summary>What applying one batch did: the real writes, the records isolated into the dead-letter queue, and how many transient failures were retried on the way.</summary>
public sealed record AppliedBatch(ApplyResult Result, IReadOnlyList<DeadLetter> Isolated, int Retries, string? LastRetriedError);

/// <summary>
/// Applies batches to one destination, deciding by error class (STYLE.md 7, in this one place):
/// <list type="bullet">
/// <item>transient — the unit is retried with exponential back-off and jitter (Polly); a rolled-back transaction leaves
/// nothing behind, and a commit whose acknowledgement was lost is re-applied harmlessly (upserts, ledger, same checkpoint);</item>
/// <item>permanent — a record the destination refuses: the batch is split in halves, recursively, each part committed
/// without the checkpoint, until the refused records are alone; they go to the dead-letter queue and the checkpoint
/// is committed last, once every good record is durable (invariant 3 holds for every part);</item>
/// <item>fatal — rethrown: the table stops with the message.</item>
/// </list>
/// One circuit breaker per destination, shared by every table: after repeated transient failures writes fail fast for
/// the break duration instead of every table hammering a destination that is down.
/// </summary>
public sealed class BatchApplier
{
    private readonly IDestination _destination;
    private readonly ResiliencePipeline _resilience;
    private readonly RetryOptions _options;

    public BatchApplier(IDestination destination, RetryOptions options, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _destination = destination;
        _options = options;
        var builder = new ResiliencePipelineBuilder { TimeProvider = time ?? TimeProvider.System };
        if (options.MaxAttempts > 0)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<SyncException>(e => e.ErrorClass == ErrorClass.Transient).Handle<BrokenCircuitException>(),
                MaxRetryAttempts = options.MaxAttempts,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.InitialDelay.ToTimeSpan(),
                MaxDelay = options.MaxDelay.ToTimeSpan(),
            });
        }

        builder.AddCircuitBreaker(new CircuitBreakerStrategyOptions
        {
            // Every write in the window failed, and at least the threshold of them: the destination is down, not one batch.
            ShouldHandle = new PredicateBuilder().Handle<SyncException>(e => e.ErrorClass == ErrorClass.Transient),
            FailureRatio = 1.0,
            MinimumThroughput = options.BreakerFailureThreshold,
            SamplingDuration = TimeSpan.FromSeconds(Math.Max(30, options.BreakDuration.TotalSeconds)),
            BreakDuration = options.BreakDuration.ToTimeSpan(),
        });
        _resilience = builder.Build();
    }

    /// <summary>
    /// Applies <paramref name="unit"/>; records the destination refuses are isolated and returned as dead letters made
    /// by <paramref name="deadLetter"/> (the write and the destination's reason).
    /// </summary>
    public async Task<AppliedBatch> ApplyAsync(ApplyUnit unit, Func<RowWrite, string, DeadLetter> deadLetter, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(unit);
        ArgumentNullException.ThrowIfNull(deadLetter);
        var attempt = new Attempt(this, cancellationToken);
        try
        {
            var result = await attempt.ApplyAsync(unit).ConfigureAwait(false);
            return new AppliedBatch(result, [], attempt.Retries, attempt.LastError);
        }
        catch (SyncException e) when (e.ErrorClass == ErrorClass.Permanent && unit.Writes.Count > 0)
        {
            var isolation = new Isolation(attempt, unit, deadLetter);
            var result = await isolation.RunAsync(e).ConfigureAwait(false);
            return new AppliedBatch(result, isolation.Poison, attempt.Retries, attempt.LastError);
        }
    }

    /// <summary>One batch's calls through the shared retry and breaker, counting the retries it needed.</summary>
    private sealed class Attempt(BatchApplier owner, CancellationToken cancellationToken)
    {
        public int Retries { get; private set; }

        public string? LastError { get; private set; }

        public async Task<ApplyResult> ApplyAsync(ApplyUnit unit)
        {
            var first = true;
            try
            {
                return await owner._resilience.ExecuteAsync(
                    async ct =>
                    {
                        if (!first)
                        {
                            Retries++;
                        }

                        first = false;
                        try
                        {
                            return await owner._destination.ApplyAsync(unit, ct).ConfigureAwait(false);
                        }
                        catch (SyncException e) when (e.ErrorClass == ErrorClass.Transient)
                        {
                            LastError = e.Message;
                            throw;
                        }
                    },
                    cancellationToken).ConfigureAwait(false);
            }
            catch (BrokenCircuitException open)
            {
                throw new SyncException(
                    ErrorClass.Transient,
                    string.Create(
                        CultureInfo.InvariantCulture,
                        $"the destination failed {owner._options.BreakerFailureThreshold} writes in a row, so writes to it are paused (circuit open for {owner._options.BreakDuration.TotalSeconds:0.#} s); gave up after {owner._options.MaxAttempts} retries of '{unit.DestinationTable}'. Last error: {LastError ?? open.Message}"),
                    open);
            }
            catch (SyncException e) when (e.ErrorClass == ErrorClass.Transient && Retries > 0)
            {
                throw new SyncException(e.ErrorClass, $"{e.Message} (gave up after {Retries} retries)", e);
            }
        }
    }

    /// <summary>Splits a refused batch until the records at fault are alone (about k·log n applies for k of them).</summary>
    private sealed class Isolation(Attempt attempt, ApplyUnit unit, Func<RowWrite, string, DeadLetter> deadLetter)
    {
        private readonly Dictionary<RecordKey, List<LedgerEntry>> _ledgerByKey = GroupLedger(unit);
        private long _inserted;
        private long _updated;
        private long _deleted;
        private bool _alreadyApplied;
        private long _childrenDeleted;
        private long _childrenNulled;

        public List<DeadLetter> Poison { get; } = [];

        public async Task<ApplyResult> RunAsync(SyncException refused)
        {
            if (unit.TruncateFirst)
            {
                Add(await attempt.ApplyAsync(unit with { Writes = [], LedgerUpdates = [], RecordBases = [], CommitsCheckpoint = false, IdempotencyKey = null }).ConfigureAwait(false));
            }

            await SplitAsync(unit.Writes, refused).ConfigureAwait(false);

            // The checkpoint last (when the unit commits one), with the ledger entries that belong to no write (positions of unchanged records).
            var writeKeys = unit.Writes.Select(w => w.Key).ToHashSet();
            var rest = unit.LedgerUpdates.Where(l => !writeKeys.Contains(l.Key)).ToList();
            // A record base goes with its row write: a refused record keeps its old base (and its ledger), so it is merged again when replayed.
            var restBases = unit.RecordBases.Where(b => !writeKeys.Contains(b.Key)).ToList();
            Add(await attempt.ApplyAsync(unit with { Writes = [], LedgerUpdates = rest, RecordBases = restBases, TruncateFirst = false }).ConfigureAwait(false));
            return new ApplyResult(_inserted, _updated, _deleted, _alreadyApplied, _childrenDeleted, _childrenNulled);
        }

        /// <param name="refused">The error <paramref name="writes"/> as one part is known to fail with; null when untried.</param>
        private async Task SplitAsync(IReadOnlyList<RowWrite> writes, SyncException? refused)
        {
            if (refused is null)
            {
                try
                {
                    Add(await attempt.ApplyAsync(Part(writes)).ConfigureAwait(false));
                    return;
                }
                catch (SyncException e) when (e.ErrorClass == ErrorClass.Permanent)
                {
                    refused = e;
                }
            }

            if (writes.Count == 1)
            {
                Poison.Add(deadLetter(writes[0], refused.Message));
                return;
            }

            var half = writes.Count / 2;
            await SplitAsync(writes.Take(half).ToList(), null).ConfigureAwait(false);
            await SplitAsync(writes.Skip(half).ToList(), null).ConfigureAwait(false);
        }

        private ApplyUnit Part(IReadOnlyList<RowWrite> writes)
        {
            var ledger = new List<LedgerEntry>(writes.Count);
            foreach (var write in writes)
            {
                if (_ledgerByKey.TryGetValue(write.Key, out var entries))
                {
                    ledger.AddRange(entries);
                }
            }

            var keys = writes.Select(w => w.Key).ToHashSet();
            var bases = unit.RecordBases.Where(b => keys.Contains(b.Key)).ToList();
            return unit with { Writes = writes, LedgerUpdates = ledger, RecordBases = bases, TruncateFirst = false, CommitsCheckpoint = false, IdempotencyKey = null };
        }

        private void Add(ApplyResult result)
        {
            _inserted += result.Inserted;
            _updated += result.Updated;
            _deleted += result.Deleted;
            _alreadyApplied |= result.AlreadyApplied;
            _childrenDeleted += result.ChildrenDeleted;
            _childrenNulled += result.ChildrenNulled;
        }

        private static Dictionary<RecordKey, List<LedgerEntry>> GroupLedger(ApplyUnit unit)
        {
            var byKey = new Dictionary<RecordKey, List<LedgerEntry>>();
            foreach (var entry in unit.LedgerUpdates)
            {
                if (!byKey.TryGetValue(entry.Key, out var list))
                {
                    byKey[entry.Key] = list = [];
                }

                list.Add(entry);
            }

            return byKey;
        }
    }
}
