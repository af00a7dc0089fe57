using DeltaSync.Core.Pipeline;

namespace DeltaSync.Core.Tests.Pipeline;

/// <summary>
/// A batch's conflict log write: started at once when it runs beside the destination's apply, else when first awaited;
/// a failed write is started again by the next wait.
/// </summary>
public sealed class ConflictLogWriteTests
{
    [Fact]
    public async Task An_overlapped_write_starts_at_once_and_a_failed_one_is_started_again_by_the_next_wait()
    {
        var calls = 0;
        var failures = 2;
        var first = new TaskCompletionSource();
        var log = new ConflictLogWrite(
            _ =>
            {
                calls++;
                var write = calls <= failures ? Task.FromException(new IOException($"store unreachable ({calls})")) : Task.CompletedTask;
                first.TrySetResult();
                return write;
            },
            overlapped: true);

        await first.Task.WaitAsync(TimeSpan.FromSeconds(10));
        SpinWait.SpinUntil(() => calls == 1 && IsDone(log), TimeSpan.FromSeconds(10));
        // The first write failed before anyone waited: the wait starts it again, and that one's failure is the answer.
        var failed = await Assert.ThrowsAsync<IOException>(() => log.WaitAsync(CancellationToken.None));
        Assert.Equal("store unreachable (2)", failed.Message);
        await log.WaitAsync(CancellationToken.None);
        await log.WaitAsync(CancellationToken.None);
        Assert.Equal(3, calls);
    }

    private static bool IsDone(ConflictLogWrite log) => log.Started is { IsCompleted: true };

    [Fact]
    public async Task A_write_that_is_not_overlapped_starts_when_first_awaited()
    {
        var calls = 0;
        var log = new ConflictLogWrite(_ => { calls++; return Task.CompletedTask; }, overlapped: false);
        await Task.Delay(50);
        Assert.Equal(0, calls);

        await log.WaitAsync(CancellationToken.None);
        await log.WaitAsync(CancellationToken.None);
        Assert.Equal(1, calls);
    }
}
