using System.Runtime.CompilerServices;
using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using NodaTime;

namespace DeltaSync.Core.Capture;

/// <summary>
/// One reconciliation now, whatever the table's capture method (<c>deltasync reconcile</c>): the repairs found by
/// key-range digests, or by the streaming comparison with the ledger where digests are unavailable. The table's
/// position does not move (a hybrid position records the reconciliation's time), so the next ordinary pass resumes
/// where it would have; timestamp and version tables get their hard deletes this way.
/// </summary>
public sealed class ReconcileCapture : IChangeCapture
{
    private readonly ISource _source;
    private readonly CaptureRequest _request;
    private readonly RangeReconcileOptions _options;
    private readonly IClock _clock;

    public ReconcileCapture(ISource source, CaptureRequest request, RangeReconcileOptions options, IClock clock)
    {
        _source = source;
        _request = request;
        _options = options;
        _clock = clock;
    }

    public async IAsyncEnumerable<ChangeBatch> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var checkpoint = _request.Resume;
        if (checkpoint.Kind == HybridCapture.Kind)
        {
            checkpoint = HybridCapture.Create(_clock.GetCurrentInstant(), HybridCapture.Parse(checkpoint).Inner);
        }

        var (sourceDigests, destinationDigests, unavailable) = await RangeReconciliation.OpenAsync(_source, _request, cancellationToken).ConfigureAwait(false);
        if (sourceDigests is not null && destinationDigests is not null)
        {
            await foreach (var batch in RangeReconciliation.PassAsync(_source, sourceDigests, destinationDigests, _request, _options, checkpoint, cancellationToken).ConfigureAwait(false))
            {
                yield return batch;
            }

            yield break;
        }

        await using var polling = _source.CreateCapture(_request with { Plan = _request.Plan with { Method = CdcMethod.Polling }, Resume = Position.None });
        long upserts = 0, deletes = 0;
        ChangeBatch? previous = null;
        await foreach (var batch in polling.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (previous is not null)
            {
                yield return Keep(previous, checkpoint);
            }

            upserts += batch.Events.Count(e => e.Operation != ChangeOperation.Delete);
            deletes += batch.Events.Count(e => e.Operation == ChangeOperation.Delete);
            previous = batch;
        }

        var last = previous ?? new ChangeBatch(_request.Schema, [], checkpoint);
        yield return new ChangeBatch(last.Schema, last.Events, checkpoint)
        {
            DeadLetters = last.DeadLetters,
            Reconciliation = new ReconciliationStats(0, 0, 0, 0, upserts, deletes),
            Warnings = [.. last.Warnings, HybridCapture.StreamingWarning(_request.Plan.Table, unavailable)],
        };
    }

    public ValueTask OnCheckpointedAsync(Position position, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private static ChangeBatch Keep(ChangeBatch batch, Position checkpoint) =>
        new(batch.Schema, batch.Events, checkpoint) { DeadLetters = batch.DeadLetters, Warnings = batch.Warnings };
}
