using DeltaSync.Core.State;
using NodaTime;

namespace DeltaSync.Core.Tests.State;

/// <summary>
/// What every <see cref="ILeaseStore"/> must do: one owner per stream at a time, a fencing epoch that only grows, and
/// no checkpoint from a writer whose lease has passed on. A store's lease test class derives from this, says how to
/// create a store over a fresh location, open another instance over it, and expire a lease without waiting.
/// </summary>
public abstract class LeaseStoreContract
{
    protected static readonly Instant T0 = Instant.FromUtc(2025, 3, 14, 9, 26, 53);

    protected static readonly TimeSpan Ttl = TimeSpan.FromMinutes(5);

    protected const string Stream = "sync/orders";

    protected static CancellationToken Ct => CancellationToken.None;

    /// <summary>An initialized store (that keeps leases) over a location no other test uses.</summary>
    protected abstract Task<IStateStore> CreateStoreAsync();

    /// <summary>Another initialized instance over the location of the last <see cref="CreateStoreAsync"/>.</summary>
    protected abstract Task<IStateStore> ReopenAsync();

    /// <summary>Moves the stream's lease expiry into the past, as waiting out its time to live would.</summary>
    protected abstract Task ExpireLeaseAsync(string stream);

    [Fact]
    public async Task A_free_lease_starts_at_epoch_one_and_its_owner_keeps_the_epoch_while_it_lives()
    {
        await using var store = await CreateStoreAsync();
        var leases = Leases(store);

        Assert.Equal(1, await leases.AcquireLeaseAsync(Stream, "worker-a", Ttl, Ct));
        Assert.Equal(1, await leases.AcquireLeaseAsync(Stream, "worker-a", Ttl, Ct));
        Assert.Equal(1, await leases.AcquireLeaseAsync("sync/customers", "worker-b", Ttl, Ct));
    }

    [Fact]
    public async Task A_live_lease_is_refused_to_another_owner_naming_the_holder()
    {
        await using var store = await CreateStoreAsync();
        var leases = Leases(store);
        await leases.AcquireLeaseAsync(Stream, "worker-a", Ttl, Ct);

        var error = await Assert.ThrowsAsync<LeaseHeldException>(() => leases.AcquireLeaseAsync(Stream, "worker-b", Ttl, Ct));

        Assert.Equal(("worker-a", 1L), (error.Holder, error.Epoch));
        Assert.Contains("held by 'worker-a' until ", error.Message, StringComparison.Ordinal);
        Assert.Contains($"'{Stream}'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_expired_lease_is_taken_with_a_higher_epoch_by_another_owner_or_its_old_owner()
    {
        await using var store = await CreateStoreAsync();
        var leases = Leases(store);
        await leases.AcquireLeaseAsync(Stream, "worker-a", Ttl, Ct);

        await ExpireLeaseAsync(Stream);
        Assert.Equal(2, await leases.AcquireLeaseAsync(Stream, "worker-b", Ttl, Ct));

        await ExpireLeaseAsync(Stream);
        Assert.Equal(3, await leases.AcquireLeaseAsync(Stream, "worker-b", Ttl, Ct));
    }

    [Fact]
    public async Task A_stale_writer_can_neither_append_nor_renew_once_its_lease_has_passed_on()
    {
        await using var store = await CreateStoreAsync();
        var leases = Leases(store);
        var staleEpoch = await leases.AcquireLeaseAsync(Stream, "worker-a", Ttl, Ct);
        await leases.AppendFencedAsync(Stored(1, "a-1"), "worker-a", staleEpoch, Ct);
        await ExpireLeaseAsync(Stream);
        var epoch = await leases.AcquireLeaseAsync(Stream, "worker-b", Ttl, Ct);

        var append = await Assert.ThrowsAsync<StateConflictException>(() => leases.AppendFencedAsync(Stored(2, "a-2"), "worker-a", staleEpoch, Ct));
        var renew = await Assert.ThrowsAsync<StateConflictException>(() => leases.RenewLeaseAsync(Stream, "worker-a", staleEpoch, Ttl, Ct));
        await leases.AppendFencedAsync(Stored(2, "b-2"), "worker-b", epoch, Ct);

        Assert.StartsWith("stale writer", append.Message, StringComparison.Ordinal);
        Assert.Contains($"'{Stream}'", append.Message, StringComparison.Ordinal);
        Assert.StartsWith("stale writer", renew.Message, StringComparison.Ordinal);
        Assert.Equal(["b-2", "a-1"], (await store.ReadHistoryAsync(Stream, 10, Ct)).Select(h => h.Payload));
    }

    [Fact]
    public async Task A_fenced_append_needs_a_lease_with_the_same_owner_and_epoch_and_a_new_version()
    {
        await using var store = await CreateStoreAsync();
        var leases = Leases(store);

        await Assert.ThrowsAsync<StateConflictException>(() => leases.AppendFencedAsync(Stored(1), "worker-a", 1, Ct));
        var epoch = await leases.AcquireLeaseAsync(Stream, "worker-a", Ttl, Ct);
        await Assert.ThrowsAsync<StateConflictException>(() => leases.AppendFencedAsync(Stored(1), "worker-b", epoch, Ct));
        await Assert.ThrowsAsync<StateConflictException>(() => leases.AppendFencedAsync(Stored(1), "worker-a", epoch + 1, Ct));
        await leases.AppendFencedAsync(Stored(1, "kept"), "worker-a", epoch, Ct);
        var duplicate = await Assert.ThrowsAsync<StateConflictException>(() => leases.AppendFencedAsync(Stored(1, "again"), "worker-a", epoch, Ct));

        Assert.Contains("already exists", duplicate.Message, StringComparison.Ordinal);
        Assert.Equal("kept", Assert.Single(await store.ReadHistoryAsync(Stream, 10, Ct)).Payload);
    }

    [Fact]
    public async Task A_released_lease_is_taken_at_once_and_a_stale_release_leaves_the_new_holder_alone()
    {
        await using var store = await CreateStoreAsync();
        var leases = Leases(store);
        var first = await leases.AcquireLeaseAsync(Stream, "worker-a", Ttl, Ct);
        await leases.ReleaseLeaseAsync(Stream, "worker-a", first, Ct);

        var second = await leases.AcquireLeaseAsync(Stream, "worker-b", Ttl, Ct);
        await leases.ReleaseLeaseAsync(Stream, "worker-a", first, Ct);

        Assert.Equal(first + 1, second);
        await Assert.ThrowsAsync<LeaseHeldException>(() => leases.AcquireLeaseAsync(Stream, "worker-a", Ttl, Ct));
    }

    [Fact]
    public async Task Renewing_extends_a_lease_that_nobody_else_has_taken()
    {
        await using var store = await CreateStoreAsync();
        var leases = Leases(store);
        var epoch = await leases.AcquireLeaseAsync(Stream, "worker-a", Ttl, Ct);
        await ExpireLeaseAsync(Stream);

        await leases.RenewLeaseAsync(Stream, "worker-a", epoch, Ttl, Ct);

        await Assert.ThrowsAsync<LeaseHeldException>(() => leases.AcquireLeaseAsync(Stream, "worker-b", Ttl, Ct));
        await leases.AppendFencedAsync(Stored(1), "worker-a", epoch, Ct);
    }

    [Fact]
    public async Task A_live_lease_is_taken_over_only_from_the_owner_named_as_dead_and_fences_it_off()
    {
        await using var store = await CreateStoreAsync();
        var leases = Leases(store);
        var deadEpoch = await leases.AcquireLeaseAsync(Stream, "host/4242/1", Ttl, Ct);

        Assert.Null(await leases.TakeOverLeaseAsync(Stream, "host/9999/1", "worker-b", Ttl, Ct));
        Assert.Null(await leases.TakeOverLeaseAsync("sync/never", "host/4242/1", "worker-b", Ttl, Ct));
        var epoch = await leases.TakeOverLeaseAsync(Stream, "host/4242/1", "worker-b", Ttl, Ct);

        Assert.Equal(deadEpoch + 1, epoch);
        await Assert.ThrowsAsync<StateConflictException>(() => leases.AppendFencedAsync(Stored(1), "host/4242/1", deadEpoch, Ct));
        await leases.AppendFencedAsync(Stored(1), "worker-b", epoch!.Value, Ct);
        Assert.Null(await leases.TakeOverLeaseAsync(Stream, "host/4242/1", "worker-c", Ttl, Ct));
    }

    [Fact]
    public async Task A_state_reset_keeps_the_lease_so_epochs_keep_growing()
    {
        await using var store = await CreateStoreAsync();
        var leases = Leases(store);
        var first = await leases.AcquireLeaseAsync(Stream, "worker-a", Ttl, Ct);
        await leases.AppendFencedAsync(Stored(1), "worker-a", first, Ct);
        await leases.ReleaseLeaseAsync(Stream, "worker-a", first, Ct);

        await store.DeleteStreamAsync(Stream, Ct);

        Assert.Equal(first + 1, await leases.AcquireLeaseAsync(Stream, "worker-b", Ttl, Ct));
    }

    [Fact]
    public async Task Raising_the_epoch_above_a_floor_keeps_the_lease_and_fences_the_old_epoch_off()
    {
        await using var store = await CreateStoreAsync();
        var leases = Leases(store);
        var epoch = await leases.AcquireLeaseAsync(Stream, "worker-a", Ttl, Ct);

        Assert.Equal(epoch, await leases.RaiseEpochAsync(Stream, "worker-a", epoch, epoch - 1, Ct));
        var raised = await leases.RaiseEpochAsync(Stream, "worker-a", epoch, 41, Ct);

        Assert.Equal(42, raised);
        await leases.RenewLeaseAsync(Stream, "worker-a", raised, Ttl, Ct);
        await leases.AppendFencedAsync(new StoredCheckpoint(Stream, 1, "{}", T0), "worker-a", raised, Ct);
        await Assert.ThrowsAsync<StateConflictException>(() => leases.AppendFencedAsync(new StoredCheckpoint(Stream, 2, "{}", T0), "worker-a", epoch, Ct));
        await Assert.ThrowsAsync<StateConflictException>(() => leases.RaiseEpochAsync(Stream, "worker-b", raised, 100, Ct));
        await leases.ReleaseLeaseAsync(Stream, "worker-a", raised, Ct);
        Assert.Equal(43, await leases.AcquireLeaseAsync(Stream, "worker-b", Ttl, Ct));
    }

    [Fact]
    public async Task Leases_survive_reopening_the_store()
    {
        long epoch;
        await using (var store = await CreateStoreAsync())
        {
            epoch = await Leases(store).AcquireLeaseAsync(Stream, "worker-a", Ttl, Ct);
        }

        await using var reopened = await ReopenAsync();

        var error = await Assert.ThrowsAsync<LeaseHeldException>(() => Leases(reopened).AcquireLeaseAsync(Stream, "worker-b", Ttl, Ct));
        Assert.Equal(("worker-a", epoch), (error.Holder, error.Epoch));
    }

    [Fact]
    public async Task Workers_on_two_store_instances_racing_for_a_lease_have_one_winner_per_round_and_epochs_strictly_increase()
    {
        await using var left = await CreateStoreAsync();
        await using var right = await ReopenAsync();
        IStateStore[] instances = [left, right];
        (string Owner, long Epoch)? previous = null;
        for (var round = 1; round <= 12; round++)
        {
            if (previous is not null)
            {
                await ExpireLeaseAsync(Stream);
            }

            using var start = new ManualResetEventSlim();
            var attempts = Enumerable.Range(0, 6)
                .Select(worker => Task.Run(
                    async () =>
                    {
                        var owner = $"worker-{round}-{worker}";
                        start.Wait(Ct);
                        try
                        {
                            return (Owner: owner, Worker: worker, Epoch: (long?)await Leases(instances[worker % 2]).AcquireLeaseAsync(Stream, owner, Ttl, Ct));
                        }
                        catch (LeaseHeldException)
                        {
                            return (Owner: owner, Worker: worker, Epoch: null);
                        }
                    },
                    Ct))
                .ToList();
            start.Set();

            var winner = Assert.Single(await Task.WhenAll(attempts), a => a.Epoch is not null);

            Assert.Equal((long)round, winner.Epoch!.Value);
            Assert.True(previous is null || winner.Epoch > previous.Value.Epoch);
            var winnerStore = Leases(instances[winner.Worker % 2]);
            var otherStore = Leases(instances[(winner.Worker + 1) % 2]);
            if (previous is { } stale)
            {
                // The last round's winner is stale now, whichever instance it writes through.
                await Assert.ThrowsAsync<StateConflictException>(() => otherStore.AppendFencedAsync(Stored(round, "stale"), stale.Owner, stale.Epoch, Ct));
                await Assert.ThrowsAsync<StateConflictException>(() => winnerStore.AppendFencedAsync(Stored(round, "stale"), stale.Owner, stale.Epoch, Ct));
            }

            await otherStore.AppendFencedAsync(Stored(round, winner.Owner), winner.Owner, winner.Epoch!.Value, Ct);
            previous = (winner.Owner, winner.Epoch.Value);
        }

        var history = await right.ReadHistoryAsync(Stream, 100, Ct);
        Assert.Equal(12, history.Count);
        Assert.All(history, h => Assert.StartsWith($"worker-{h.Version}-", h.Payload, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_fenced_append_racing_a_takeover_either_lands_before_it_or_is_refused()
    {
        await using var left = await CreateStoreAsync();
        await using var right = await ReopenAsync();
        var epoch = await Leases(left).AcquireLeaseAsync(Stream, "worker-a", Ttl, Ct);
        for (var version = 1; version <= 20; version++)
        {
            using var start = new ManualResetEventSlim();
            var current = epoch;
            var append = Task.Run(
                async () =>
                {
                    start.Wait(Ct);
                    await Leases(left).AppendFencedAsync(Stored(version, "a"), "worker-a", current, Ct);
                },
                Ct);
            var takeOver = Task.Run(
                async () =>
                {
                    start.Wait(Ct);
                    return await Leases(right).TakeOverLeaseAsync(Stream, "worker-a", "worker-b", Ttl, Ct);
                },
                Ct);
            start.Set();

            var appendError = await Record.ExceptionAsync(() => append);
            var taken = await takeOver;

            // Whatever the order, the new owner sees every version the old one managed to write: nothing lands after.
            Assert.Equal(current + 1, taken);
            Assert.True(appendError is null or StateConflictException, appendError?.ToString());
            var newest = await right.ReadHistoryAsync(Stream, 1, Ct);
            Assert.Equal(appendError is null, newest.Count == 1 && newest[0].Version == version);
            await Assert.ThrowsAsync<StateConflictException>(() => Leases(left).AppendFencedAsync(Stored(version + 100, "late"), "worker-a", current, Ct));

            // Hand the lease back to worker-a for the next round.
            await Leases(right).ReleaseLeaseAsync(Stream, "worker-b", taken!.Value, Ct);
            epoch = await Leases(left).AcquireLeaseAsync(Stream, "worker-a", Ttl, Ct);
            Assert.Equal(taken + 1, epoch);
            if (appendError is not null)
            {
                await Leases(left).AppendFencedAsync(Stored(version, "a"), "worker-a", epoch, Ct);
            }
        }
    }

    protected static ILeaseStore Leases(IStateStore store) =>
        store as ILeaseStore ?? throw new InvalidOperationException($"{store.GetType().Name} keeps no leases");

    protected static StoredCheckpoint Stored(long version, string? payload = null) =>
        new(Stream, version, payload ?? $"payload-{version}", T0);
}
