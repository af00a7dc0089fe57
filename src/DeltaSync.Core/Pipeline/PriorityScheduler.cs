using DeltaSync.Core.Config;

namespace DeltaSync.Core.Pipeline;

/// <summary>
/// Runs work items at most <c>max_parallel_tables</c> at a time; whenever a slot frees, the most urgent waiting item
/// (critical, high, normal, low; then configuration order) takes it.
/// </summary>
public static class PriorityScheduler
{
    public static async Task<IReadOnlyList<TResult>> RunAsync<TItem, TResult>(
        IReadOnlyList<TItem> items,
        Func<TItem, TablePriority> priority,
        int maxParallel,
        Func<TItem, Task<TResult>> run,
        Action<TItem>? onStart = null)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(priority);
        ArgumentNullException.ThrowIfNull(run);
        var waiting = new PriorityQueue<int, (int Priority, int Order)>();
        for (var i = 0; i < items.Count; i++)
        {
            waiting.Enqueue(i, ((int)priority(items[i]), i));
        }

        var results = new TResult[items.Count];
        var running = new Dictionary<Task<TResult>, int>();
        while (waiting.Count > 0 || running.Count > 0)
        {
            while (running.Count < Math.Max(1, maxParallel) && waiting.TryDequeue(out var next, out _))
            {
                onStart?.Invoke(items[next]);
                running[run(items[next])] = next;
            }

            var done = await Task.WhenAny(running.Keys).ConfigureAwait(false);
            results[running[done]] = await done.ConfigureAwait(false);
            running.Remove(done);
        }

        return results;
    }
}
