using System.Threading.Channels;
using DeltaSync.Core.Config;
using DeltaSync.Core.Pipeline;

namespace DeltaSync.Core.Tests.Pipeline;

public sealed class PrioritySchedulerTests
{
    [Fact]
    public async Task With_one_slot_items_run_by_priority_then_config_order()
    {
        var items = new[]
        {
            ("low-1", TablePriority.Low),
            ("normal-1", TablePriority.Normal),
            ("critical-1", TablePriority.Critical),
            ("high-1", TablePriority.High),
            ("normal-2", TablePriority.Normal),
            ("critical-2", TablePriority.Critical),
            ("low-2", TablePriority.Low),
            ("high-2", TablePriority.High),
        };
        var started = new List<string>();

        var results = await PriorityScheduler.RunAsync(items, i => i.Item2, 1, i =>
        {
            started.Add(i.Item1);
            return Task.FromResult(i.Item1.ToUpperInvariant());
        });

        Assert.Equal(["critical-1", "critical-2", "high-1", "high-2", "normal-1", "normal-2", "low-1", "low-2"], started);
        Assert.Equal(items.Select(i => i.Item1.ToUpperInvariant()), results);
    }

    [Fact]
    public async Task With_one_slot_the_next_item_starts_only_after_the_running_one_finished()
    {
        var items = new[] { ("a", TablePriority.Normal), ("b", TablePriority.High), ("c", TablePriority.Critical) };
        using var gates = new Gates(items.Length);

        var run = PriorityScheduler.RunAsync(items, i => i.Item2, 1, i => gates.Run(Array.IndexOf(items, i)));

        Assert.Equal(2, await gates.NextStartedAsync());
        Assert.False(gates.TryNextStarted(out _));
        gates.Release(2);
        Assert.Equal(1, await gates.NextStartedAsync());
        Assert.False(gates.TryNextStarted(out _));
        gates.Release(1);
        Assert.Equal(0, await gates.NextStartedAsync());
        gates.Release(0);
        await run;
        Assert.Equal(1, gates.MaxConcurrent);
    }

    [Theory]
    [InlineData(1, 6)]
    [InlineData(2, 7)]
    [InlineData(3, 10)]
    public async Task Never_more_than_the_slot_count_run_at_once_and_every_item_runs(int slots, int count)
    {
        var items = Enumerable.Range(0, count).Select(n => (Index: n, Priority: (TablePriority)(n % 4))).ToArray();
        using var gates = new Gates(count);

        var run = PriorityScheduler.RunAsync(items, item => item.Priority, slots, item => gates.Run(item.Index));

        var running = new HashSet<int>();
        for (var i = 0; i < slots; i++)
        {
            running.Add(await gates.NextStartedAsync());
        }

        Assert.False(gates.TryNextStarted(out _));
        var finished = 0;
        while (running.Count > 0)
        {
            // Free the slots in a changing order: the oldest, then the newest…
            var next = finished % 2 == 0 ? running.Min() : running.Max();
            running.Remove(next);
            gates.Release(next);
            finished++;
            if (finished + running.Count < count)
            {
                running.Add(await gates.NextStartedAsync());
            }

            Assert.True(running.Count <= slots);
        }

        var results = await run;
        Assert.Equal(Enumerable.Range(0, count).Select(i => i * 10), results);
        Assert.Equal(Math.Min(slots, count), gates.MaxConcurrent);
    }

    [Fact]
    public async Task A_freed_slot_goes_to_the_most_urgent_waiting_item()
    {
        var items = new[] { ("n1", TablePriority.Normal), ("n2", TablePriority.Normal), ("low", TablePriority.Low), ("crit", TablePriority.Critical) };
        using var gates = new Gates(items.Length);

        var run = PriorityScheduler.RunAsync(items, i => i.Item2, 2, i => gates.Run(Array.IndexOf(items, i)));

        Assert.Equal(new HashSet<int> { 3, 0 }, new HashSet<int> { await gates.NextStartedAsync(), await gates.NextStartedAsync() });
        gates.Release(3);
        Assert.Equal(1, await gates.NextStartedAsync());
        gates.Release(0);
        Assert.Equal(2, await gates.NextStartedAsync());
        gates.Release(1);
        gates.Release(2);
        await run;
    }

    /// <summary>Work items that report when they start and finish only when the test releases them.</summary>
    private sealed class Gates : IDisposable
    {
        private readonly TaskCompletionSource[] _gates;
        private readonly Channel<int> _started = Channel.CreateUnbounded<int>();
        private int _running;
        private int _max;

        public Gates(int count)
        {
            _gates = Enumerable.Range(0, count).Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
        }

        public int MaxConcurrent => Volatile.Read(ref _max);

        public async Task<int> Run(int index)
        {
            var now = Interlocked.Increment(ref _running);
            int seen;
            while (now > (seen = Volatile.Read(ref _max)) && Interlocked.CompareExchange(ref _max, now, seen) != seen)
            {
            }

            _started.Writer.TryWrite(index);
            await _gates[index].Task.ConfigureAwait(false);
            Interlocked.Decrement(ref _running);
            return index * 10;
        }

        public async Task<int> NextStartedAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            return await _started.Reader.ReadAsync(timeout.Token);
        }

        public bool TryNextStarted(out int index) => _started.Reader.TryRead(out index);

        public void Release(int index) => _gates[index].TrySetResult();

        public void Dispose()
        {
            foreach (var gate in _gates)
            {
                gate.TrySetResult();
            }
        }
    }
}
