using DeltaSync.Core.Config;
using DeltaSync.Core.Model;
using DeltaSync.Core.State;
using NodaTime;

namespace DeltaSync.Core.Tests.State;

public sealed class CheckpointHistoryTests
{
    private const string Stream = "sync/orders";
    private static readonly Instant T0 = Instant.FromUtc(2025, 3, 14, 9, 0);
    private static readonly RecoveryOptions Repair = new(ValidateOnStart: true, AutoRepair: true, ResetOnCorruption: false);
    private static readonly RecoveryOptions Reset = new(ValidateOnStart: true, AutoRepair: false, ResetOnCorruption: true);
    private static readonly RecoveryOptions Strict = new(ValidateOnStart: true, AutoRepair: false, ResetOnCorruption: false);

    private readonly MemoryStateStore _store = new();
    private readonly FixedClock _clock = new(T0 + Duration.FromHours(1));
    private readonly CheckpointHistory _history;

    public CheckpointHistoryTests()
    {
        _history = new CheckpointHistory(_store, _clock);
    }

    [Fact]
    public async Task A_stream_without_checkpoints_loads_as_a_fresh_start()
    {
        var loaded = await _history.LoadAsync(Stream, Repair, CancellationToken.None);

        Assert.Null(loaded.Checkpoint);
        Assert.Empty(loaded.Warnings);
    }

    [Fact]
    public async Task The_newest_valid_checkpoint_is_loaded_without_warnings()
    {
        await AppendVersionsAsync(3);

        var loaded = await _history.LoadAsync(Stream, Strict, CancellationToken.None);

        Assert.Equal(Checkpoint(3), loaded.Checkpoint);
        Assert.Empty(loaded.Warnings);
    }

    [Fact]
    public async Task Loading_reads_only_the_newest_version_unless_it_needs_repair()
    {
        // run --follow loads the checkpoint at every pass: a long history must not be read each time.
        await AppendVersionsAsync(50);
        var before = _store.VersionsRead;

        Assert.Equal(Checkpoint(50), (await _history.LoadAsync(Stream, Repair, CancellationToken.None)).Checkpoint);
        Assert.Equal(1, _store.VersionsRead - before);

        _store.Damage(Stream, 50, payload => payload.Replace("position-50", "position-x", StringComparison.Ordinal));
        var repaired = await _history.LoadAsync(Stream, Repair, CancellationToken.None);
        Assert.Equal(new Position("cursor", "position-49"), repaired.Checkpoint!.Position);
        Assert.Equal(51, repaired.Checkpoint.Version);
    }

    [Fact]
    public async Task The_history_keeps_the_newest_versions_as_a_long_follow_adds_more()
    {
        // run --follow saves a version per pass: thousands an hour.
        await AppendVersionsAsync(CheckpointHistory.Kept + 120);

        var kept = await _store.ReadHistoryAsync(Stream, int.MaxValue, CancellationToken.None);
        Assert.Equal(CheckpointHistory.Kept + 120, kept[0].Version);
        Assert.InRange(kept.Count, CheckpointHistory.Kept, CheckpointHistory.Kept + 50);
        Assert.Equal(Enumerable.Range(0, kept.Count).Select(i => (long)(CheckpointHistory.Kept + 120 - i)), kept.Select(k => k.Version));
    }

    [Fact]
    public async Task Saving_a_version_already_stored_with_the_same_content_succeeds_and_other_content_is_a_conflict()
    {
        // The first save committed but its answer was lost; the retry finds it there.
        await _history.AppendAsync(Checkpoint(1), CancellationToken.None);
        await _history.AppendAsync(Checkpoint(1), CancellationToken.None);

        await Assert.ThrowsAsync<StateConflictException>(() => _history.AppendAsync(Checkpoint(1) with { Position = new Position("cursor", "other") }, CancellationToken.None));
        Assert.Single(await _store.ReadHistoryAsync(Stream, 10, CancellationToken.None));
    }

    [Fact]
    public async Task A_validator_problem_is_repaired_like_corruption_and_refused_without_auto_repair()
    {
        await _history.AppendAsync(Checkpoint(1), CancellationToken.None);
        await _history.AppendAsync(Checkpoint(2) with { Position = new Position("cursor", "future") }, CancellationToken.None);
        string? Validate(Checkpoint c) => c.Position.Value == "future" ? "its cursor is ahead of the source's clock" : null;

        var error = await Assert.ThrowsAsync<CheckpointCorruptException>(() => _history.LoadAsync(Stream, Strict, Validate, CancellationToken.None));
        Assert.Contains("version 2 is invalid: its cursor is ahead", error.Message, StringComparison.Ordinal);

        var loaded = await _history.LoadAsync(Stream, Repair, Validate, CancellationToken.None);
        Assert.Equal(Checkpoint(1).Position, loaded.Checkpoint!.Position);
        Assert.Equal(3, loaded.Checkpoint.Version);
        Assert.Contains("version 2 was invalid", Assert.Single(loaded.Warnings), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rollback_appends_a_copy_of_the_old_version_as_the_newest()
    {
        await AppendVersionsAsync(3);

        var restored = await _history.RollbackAsync(Stream, 1, CancellationToken.None);

        Assert.Equal(Checkpoint(1) with { Version = 4, CreatedAt = _clock.Now, Note = "rollback to version 1" }, restored);
        var listed = await _history.ListAsync(Stream, 10, CancellationToken.None);
        Assert.Equal([4L, 3L, 2L, 1L], listed.Select(l => l.Stored.Version));
        Assert.Equal([restored, Checkpoint(3), Checkpoint(2), Checkpoint(1)], listed.Select(l => l.Parsed));
        Assert.Equal(restored, (await _history.LoadAsync(Stream, Strict, CancellationToken.None)).Checkpoint);
    }

    [Fact]
    public async Task Rollback_to_a_missing_or_invalid_version_is_refused()
    {
        await AppendVersionsAsync(3);
        _store.Damage(Stream, 2, p => p.Replace("position-2", "position-X", StringComparison.Ordinal));

        var missing = await Assert.ThrowsAsync<InvalidOperationException>(() => _history.RollbackAsync(Stream, 9, CancellationToken.None));
        var invalid = await Assert.ThrowsAsync<InvalidOperationException>(() => _history.RollbackAsync(Stream, 2, CancellationToken.None));
        await Assert.ThrowsAsync<InvalidOperationException>(() => _history.RollbackAsync("sync/never", 1, CancellationToken.None));

        Assert.Contains("versions 1..3", missing.Message, StringComparison.Ordinal);
        Assert.Contains("checksum mismatch", invalid.Message, StringComparison.Ordinal);
        Assert.Equal(3, (await _store.ReadHistoryAsync(Stream, 10, CancellationToken.None)).Count);
    }

    [Fact]
    public async Task A_corrupt_newest_version_is_repaired_from_the_newest_valid_one()
    {
        await AppendVersionsAsync(4);
        _store.Damage(Stream, 4, p => p[..(p.Length / 2)]);
        _store.Damage(Stream, 3, p => p.Replace("position-3", "position-9", StringComparison.Ordinal));

        var loaded = await _history.LoadAsync(Stream, Repair, CancellationToken.None);

        Assert.NotNull(loaded.Checkpoint);
        Assert.Equal(5, loaded.Checkpoint.Version);
        Assert.Equal(Checkpoint(2).Position, loaded.Checkpoint.Position);
        Assert.Equal(_clock.Now, loaded.Checkpoint.CreatedAt);
        Assert.StartsWith("auto-repaired: version 4 was corrupt", loaded.Checkpoint.Note, StringComparison.Ordinal);
        Assert.Contains("repaired from version 2", Assert.Single(loaded.Warnings), StringComparison.Ordinal);
        Assert.Equal(loaded.Checkpoint, (await _history.LoadAsync(Stream, Strict, CancellationToken.None)).Checkpoint);
    }

    [Fact]
    public async Task A_payload_stored_under_another_version_is_corrupt()
    {
        await AppendVersionsAsync(1);
        var copied = (await _store.ReadHistoryAsync(Stream, 1, CancellationToken.None))[0];
        await _store.AppendAsync(copied with { Version = 2 }, CancellationToken.None);

        var error = await Assert.ThrowsAsync<CheckpointCorruptException>(() => _history.LoadAsync(Stream, Strict, CancellationToken.None));

        Assert.Contains("version 2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_reset_on_corruption_a_corrupt_stream_is_reset_and_resynced_from_the_start()
    {
        await AppendVersionsAsync(2);
        _store.Damage(Stream, 2, _ => "{}");

        var loaded = await _history.LoadAsync(Stream, Reset, CancellationToken.None);

        Assert.Null(loaded.Checkpoint);
        Assert.Contains("history was reset", Assert.Single(loaded.Warnings), StringComparison.Ordinal);
        Assert.Empty(await _store.ReadHistoryAsync(Stream, 10, CancellationToken.None));
    }

    [Fact]
    public async Task Auto_repair_with_no_valid_version_left_resets_the_stream()
    {
        await AppendVersionsAsync(2);
        _store.Damage(Stream, 1, _ => "not json");
        _store.Damage(Stream, 2, _ => "");

        var loaded = await _history.LoadAsync(Stream, Repair, CancellationToken.None);

        Assert.Null(loaded.Checkpoint);
        Assert.Contains("no valid version remained", Assert.Single(loaded.Warnings), StringComparison.Ordinal);
        Assert.Empty(await _store.ListStreamsAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Without_repair_or_reset_a_corrupt_checkpoint_stops_the_load_and_says_what_to_do()
    {
        await AppendVersionsAsync(2);
        _store.Damage(Stream, 2, p => p.Replace("position-2", "position-3", StringComparison.Ordinal));

        var error = await Assert.ThrowsAsync<CheckpointCorruptException>(() => _history.LoadAsync(Stream, Strict, CancellationToken.None));

        Assert.Contains($"'{Stream}' version 2", error.Message, StringComparison.Ordinal);
        Assert.Contains("deltasync state rollback --table orders", error.Message, StringComparison.Ordinal);
        Assert.Equal(2, (await _store.ReadHistoryAsync(Stream, 10, CancellationToken.None)).Count);
    }

    [Fact]
    public async Task Without_validation_on_start_a_corrupt_checkpoint_is_never_repaired()
    {
        await AppendVersionsAsync(2);
        _store.Damage(Stream, 2, _ => "{}");

        var error = await Assert.ThrowsAsync<CheckpointCorruptException>(
            () => _history.LoadAsync(Stream, new RecoveryOptions(ValidateOnStart: false, AutoRepair: true, ResetOnCorruption: true), CancellationToken.None));

        Assert.Contains("validate_on_start is off", error.Message, StringComparison.Ordinal);
        Assert.Equal(2, (await _store.ReadHistoryAsync(Stream, 10, CancellationToken.None)).Count);
    }

    [Fact]
    public async Task A_checkpoint_written_by_an_older_format_loads_migrated()
    {
        // The 0.9 layout: no method, no watermark. Its checksum covers exactly this text.
        const string V09 = """{"state_version":"0.9","stream":"sync/orders","table":"orders","version":1,"position":"cursor:2023-11-02T08:15:00Z","schema_fingerprint":"fp","epoch":1,"run_id":"old","created_at":"2023-11-02T08:16:00Z"}""";
        var checksum = "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(V09)));
        await _store.AppendAsync(new StoredCheckpoint(Stream, 1, V09[..^1] + $",\"checksum\":\"{checksum}\"}}", T0), CancellationToken.None);

        var loaded = await _history.LoadAsync(Stream, Strict, CancellationToken.None);

        Assert.Equal(Core.State.Checkpoint.CurrentStateVersion, loaded.Checkpoint!.StateVersion);
        Assert.Equal("unknown", loaded.Checkpoint.Method);
        Assert.Empty(loaded.Warnings);
    }

    private async Task AppendVersionsAsync(int count)
    {
        for (var version = 1; version <= count; version++)
        {
            await _history.AppendAsync(Checkpoint(version), CancellationToken.None);
        }
    }

    private static Checkpoint Checkpoint(long version) => new(
        Stream,
        "orders",
        version,
        new Position("cursor", $"position-{version}"),
        "cursor",
        T0 + Duration.FromMinutes(version),
        T0 + Duration.FromMinutes(version) - Duration.FromSeconds(30),
        "fp-1",
        CheckpointCounters.Zero.Add(version * 100, version * 90, version * 10, 0, 0),
        Epoch: 2,
        RunId: $"run-{version}",
        CreatedAt: T0 + Duration.FromMinutes(version));

    private sealed class FixedClock(Instant now) : IClock
    {
        public Instant Now { get; } = now;

        public Instant GetCurrentInstant() => Now;
    }

    /// <summary>Checkpoint histories in memory; the rest of the store is not needed by <see cref="CheckpointHistory"/>.</summary>
    private sealed class MemoryStateStore : IStateStore
    {
        private readonly Dictionary<string, SortedDictionary<long, StoredCheckpoint>> _streams = new(StringComparer.Ordinal);

        public string Description => "memory";

        /// <summary>Changes a stored payload behind the history's back, as a disk or a person might.</summary>
        public void Damage(string stream, long version, Func<string, string> change)
        {
            var stored = _streams[stream][version];
            _streams[stream][version] = stored with { Payload = change(stored.Payload) };
        }

        public Task InitializeAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task TrimHistoryAsync(string stream, long version, CancellationToken cancellationToken)
        {
            if (_streams.TryGetValue(stream, out var versions))
            {
                foreach (var old in versions.Keys.Where(v => v < version).ToList())
                {
                    versions.Remove(old);
                }
            }

            return Task.CompletedTask;
        }

        /// <summary>How many stored versions reads have returned in all.</summary>
        public int VersionsRead { get; private set; }

        public Task<IReadOnlyList<StoredCheckpoint>> ReadHistoryAsync(string stream, int limit, CancellationToken cancellationToken)
        {
            IReadOnlyList<StoredCheckpoint> read = _streams.TryGetValue(stream, out var versions) ? versions.Values.Reverse().Take(limit).ToList() : [];
            VersionsRead += read.Count;
            return Task.FromResult(read);
        }

        public Task AppendAsync(StoredCheckpoint checkpoint, CancellationToken cancellationToken)
        {
            if (!_streams.TryGetValue(checkpoint.Stream, out var versions))
            {
                _streams[checkpoint.Stream] = versions = [];
            }

            if (!versions.TryAdd(checkpoint.Version, checkpoint))
            {
                throw new StateConflictException($"version {checkpoint.Version} exists");
            }

            return Task.CompletedTask;
        }

        public Task<IReadOnlyList<string>> ListStreamsAsync(CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<string>>(_streams.Keys.ToList());

        public Task DeleteStreamAsync(string stream, CancellationToken cancellationToken)
        {
            _streams.Remove(stream);
            return Task.CompletedTask;
        }

        public Task AddDeadLettersAsync(IReadOnlyList<DeadLetter> deadLetters, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IReadOnlyList<DeadLetter>> ReadDeadLettersAsync(string? stream, int limit, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<int> RemoveDeadLettersAsync(IReadOnlyList<DeadLetter> deadLetters, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task AppendConflictLogAsync(IReadOnlyList<ConflictLogRecord> entries, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IReadOnlyList<ConflictLogRecord>> ReadConflictLogAsync(string? conflictId, int limit, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task AddConflictReviewsAsync(IReadOnlyList<ConflictReview> reviews, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IReadOnlyList<ConflictReview>> ReadConflictReviewsAsync(string? conflictId, int limit, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<bool> RemoveConflictReviewAsync(string conflictId, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task AppendRunAsync(RunRecord run, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IReadOnlyList<RunRecord>> ReadRunsAsync(int limit, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IReadOnlyList<string>> ReadRunIdsAsync(int limit, CancellationToken cancellationToken) => throw new NotSupportedException();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
