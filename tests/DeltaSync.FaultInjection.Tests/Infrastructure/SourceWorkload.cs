namespace DeltaSync.FaultInjection.Tests.Infrastructure;

/// <summary>
/// A source table <c>items</c> with data and an application's kind of changes: random inserts, updates and deletes in
/// small transactions. Capture methods that cannot see hard deletes (timestamp, sequence) get soft deletes instead
/// (<c>deleted</c> set, the change column bumped), as an application using them would. With <see cref="HasEvents"/>
/// the source also has <c>events</c>, a keyless append-only table.
/// </summary>
internal abstract class SourceWorkload : IAsyncDisposable
{
    private long _nextId = 1;

    /// <summary>The connection for the config's <c>sync.source.connection</c>.</summary>
    public abstract string Connection { get; }

    /// <summary>Whether deletes are real (<c>DELETE</c>) or soft (<c>deleted</c> set).</summary>
    public bool HardDeletes { get; init; } = true;

    /// <summary>Whether the source also has the keyless <c>events</c> table.</summary>
    public bool HasEvents { get; init; }

    /// <summary>The columns compared at the destination, key first.</summary>
    public abstract string ItemsColumns { get; }

    public const string EventsColumns = "kind, amount, at";

    /// <summary>Rows written by <see cref="MutateAsync"/> so far (all kinds).</summary>
    public long Operations => Interlocked.Read(ref _operations);

    private long _operations;

    /// <summary>Creates the table(s) with <paramref name="rows"/> rows; <paramref name="padding"/> makes each row that many characters wider.</summary>
    public async Task CreateAsync(int rows, int padding = 0)
    {
        await CreateCoreAsync(rows, padding);
        Interlocked.Exchange(ref _nextId, rows + 1);
    }

    /// <summary><paramref name="operations"/> random changes in transactions of 1 to 10 statements.</summary>
    public async Task MutateAsync(Random random, int operations)
    {
        var plan = new List<Change>(operations);
        for (var i = 0; i < operations; i++)
        {
            var roll = random.Next(100);
            var top = Interlocked.Read(ref _nextId);
            plan.Add(roll switch
            {
                < 30 => new Change(ChangeKind.Insert, Interlocked.Increment(ref _nextId) - 1, random.Next()),
                < 85 => new Change(ChangeKind.Update, 1 + random.NextInt64(top - 1), random.Next()),
                < 95 => new Change(HardDeletes ? ChangeKind.Delete : ChangeKind.SoftDelete, 1 + random.NextInt64(top - 1), random.Next()),
                _ => new Change(HasEvents ? ChangeKind.Event : ChangeKind.Update, 1 + random.NextInt64(top - 1), random.Next()),
            });
        }

        for (var start = 0; start < plan.Count;)
        {
            var size = Math.Min(plan.Count - start, 1 + random.Next(10));
            await ApplyAsync(plan.GetRange(start, size));
            start += size;
        }

        Interlocked.Add(ref _operations, operations);
    }

    /// <summary>
    /// One large transaction, as a batch job would make: about one row in <c>5..12</c> updated, 2% new rows, about one
    /// in <c>60..120</c> deleted (soft-deleted without <see cref="HardDeletes"/>), and events appended.
    /// </summary>
    public async Task BulkMutateAsync(Random random)
    {
        var top = Interlocked.Read(ref _nextId);
        var inserts = Math.Max(10, (top - 1) / 50);
        var first = Interlocked.Add(ref _nextId, inserts) - inserts;
        await BulkCoreAsync(new Bulk(random.Next(5, 13), random.Next(5), first, inserts, random.Next(60, 121), random.Next(60), random.Next(1_000_000)));
        Interlocked.Add(ref _operations, 1);
    }

    /// <summary>Every <c>items</c> row as canonical text, by key.</summary>
    public abstract Task<List<string[]>> ReadItemsAsync(bool crossSystem);

    /// <summary>Every <c>events</c> row as canonical text.</summary>
    public abstract Task<List<string[]>> ReadEventsAsync(bool crossSystem);

    public abstract ValueTask DisposeAsync();

    protected abstract Task CreateCoreAsync(int rows, int padding);

    /// <summary>Applies a bulk change in one transaction.</summary>
    protected abstract Task BulkCoreAsync(Bulk bulk);

    /// <summary>Applies the changes in one transaction.</summary>
    protected abstract Task ApplyAsync(IReadOnlyList<Change> changes);

    protected enum ChangeKind
    {
        Insert,
        Update,
        Delete,
        SoftDelete,
        Event,
    }

    /// <summary>Rows with <c>id % UpdateModulus = UpdateRemainder</c> are updated, <c>Inserts</c> rows from <c>FirstNewId</c> inserted, rows with <c>id % DeleteModulus = DeleteRemainder</c> deleted.</summary>
    protected readonly record struct Bulk(int UpdateModulus, int UpdateRemainder, long FirstNewId, long Inserts, int DeleteModulus, int DeleteRemainder, int Salt);

    /// <param name="Id">The row's key.</param>
    /// <param name="Salt">A random number the new values are made from.</param>
    protected readonly record struct Change(ChangeKind Kind, long Id, int Salt);
}

/// <summary>
/// Changes made in the background while a run is going on (a few rows every few milliseconds), until stopped.
/// The pauses pace the load; nothing waits on them for synchronization.
/// </summary>
internal sealed class BackgroundChanges : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    private BackgroundChanges(SourceWorkload workload, int seed)
    {
        var random = new Random(seed);
        _loop = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                await workload.MutateAsync(random, 1 + random.Next(8));
                try
                {
                    await Task.Delay(random.Next(2, 20), _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        });
    }

    public static BackgroundChanges Start(SourceWorkload workload, int seed) => new(workload, seed);

    /// <summary>Stops after the transaction in flight; rethrows a failure of the change loop.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _loop;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await _stop.CancelAsync();
        }

        try
        {
            await _loop;
        }
        catch (Exception)
        {
            // Already reported by StopAsync, or the test failed before stopping; the loop is over either way.
        }

        _stop.Dispose();
    }
}
