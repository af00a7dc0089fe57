using DeltaSync.Core.Pipeline;
using DeltaSync.Core.Tests.Config;

namespace DeltaSync.Core.Tests.Pipeline;

/// <summary>
/// A batch's conflict log is written while the destination writes the batch, unless the state store is the
/// destination's own SQLite file (the batch holds its only writer until the commit, which waits for the log).
/// </summary>
public sealed class ConflictLogWriteTests
{
    private const string Sources = """
        sync:
          sources:
            - {name: a, connection: "sqlite:a.db", tables: [items]}
            - {name: b, connection: "sqlite:b.db", tables: [items]}
          destination: {connection: "DESTINATION"}
        """;

    [Theory]
    [InlineData("sqlite:warehouse.db", "sqlite:warehouse.db", true)]
    [InlineData("sqlite:warehouse.db", "sqlite:./sub/../warehouse.db", true)]
    [InlineData("sqlite:warehouse.db", "warehouse.db", true)]
    [InlineData("sqlite:warehouse.db", "Data Source=warehouse.db", true)]
    [InlineData("sqlite:warehouse.db", "sqlite:state.db", false)]
    [InlineData("sqlite:warehouse.db", "postgresql://u@localhost/db", false)]
    [InlineData("postgresql://u@localhost/db", "postgresql://u@localhost/db", false)]
    [InlineData("postgresql://u@localhost/db", "sqlite:state.db", false)]
    public void The_log_waits_before_the_batch_only_when_the_state_store_is_the_destination_file(string destination, string state, bool shared)
    {
        var config = ConfigText.Parse(Sources.Replace("DESTINATION", destination, StringComparison.Ordinal) + $"\nstate: {{storage: {{type: database, connection: \"{state}\"}}}}\n");

        Assert.Equal(shared, ConflictSession.StateSharesDestinationFile(config));
    }

    [Fact]
    public void The_default_state_file_and_a_folder_store_are_not_the_destination()
    {
        Assert.False(ConflictSession.StateSharesDestinationFile(ConfigText.Parse(Sources.Replace("DESTINATION", "sqlite:warehouse.db", StringComparison.Ordinal))));
        Assert.False(ConflictSession.StateSharesDestinationFile(ConfigText.Parse(Sources.Replace("DESTINATION", "sqlite:warehouse.db", StringComparison.Ordinal) + "\nstate: {storage: {type: file, path: warehouse.db}}\n")));
    }

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
