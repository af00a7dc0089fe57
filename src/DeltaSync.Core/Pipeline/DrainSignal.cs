namespace DeltaSync.Core.Pipeline;

/// <summary>
/// Counts the batches a capture handed to the pipeline and those the pipeline finished applying, so a capture can
/// wait until the destination reflects everything it yielded (reconciliation reads the destination's digests only
/// then, or it would find the batches still in the channel as drift).
/// </summary>
internal sealed class DrainSignal
{
    private readonly Lock _gate = new();
    private long _handed;
    private long _applied;
    private TaskCompletionSource? _drained;

    public void Handed()
    {
        lock (_gate)
        {
            _handed++;
        }
    }

    public void Applied()
    {
        TaskCompletionSource? drained = null;
        lock (_gate)
        {
            _applied++;
            if (_applied >= _handed)
            {
                (drained, _drained) = (_drained, null);
            }
        }

        drained?.TrySetResult();
    }

    /// <summary>Completes once every batch handed so far is applied (a consumer that stops cancels the wait through the token).</summary>
    public Task WaitAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_applied >= _handed)
            {
                return Task.CompletedTask;
            }

            _drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _drained.Task.WaitAsync(cancellationToken);
        }
    }
}
