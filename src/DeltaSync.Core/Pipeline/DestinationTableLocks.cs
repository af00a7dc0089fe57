using System.Collections.Concurrent;

namespace DeltaSync.Core.Pipeline;

/// <summary>
/// One async lock per destination table: the pipelines of different sources writing one table take turns from reading
/// record bases to committing, so no source merges on a base another has already replaced (a lost update).
/// </summary>
public sealed class DestinationTableLocks
{
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Waits for <paramref name="destinationTable"/>'s lock; disposing the result releases it.</summary>
    public async Task<IDisposable> AcquireAsync(string destinationTable, CancellationToken cancellationToken)
    {
        var gate = _locks.GetOrAdd(destinationTable, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        return new Release(gate);
    }

    private sealed class Release(SemaphoreSlim gate) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                gate.Release();
            }
        }
    }
}
