using System.Globalization;
using DeltaSync.Core.State;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using NodaTime;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>
/// Random inserts, updates and deletes applied to the source in random chunks, with a sync (at a random batch size)
/// after each chunk: after every sync the destination equals the source (nothing lost, nothing doubled), a re-run
/// writes nothing, and replaying from an older checkpoint version writes nothing either (invariants 1 to 3).
/// </summary>
public sealed class RandomChangesSyncPropertyTests
{
    private const int Cases = 15;

    [Property(MaxTest = Cases, Arbitrary = new[] { typeof(ChangeScenarios) })]
    public async Task Trigger_capture_of_random_changes_keeps_the_destination_equal_to_the_source(TriggerScenario scenario) =>
        await RunAsync(scenario.Changes, $"{{name: rows, cdc_method: trigger}}", $"cdc: {{trigger: {{prune: {(scenario.Changes.Prune ? "true" : "false")}}}}}", clock: null);

    [Property(MaxTest = Cases, Arbitrary = new[] { typeof(ChangeScenarios) })]
    public async Task Polling_capture_of_random_changes_keeps_the_destination_equal_to_the_source(PollingScenario scenario) =>
        await RunAsync(scenario.Changes, "{name: rows, cdc_method: polling}", "", clock: null);

    [Property(MaxTest = Cases, Arbitrary = new[] { typeof(ChangeScenarios) })]
    public async Task Timestamp_capture_of_random_inserts_and_updates_keeps_the_destination_equal_to_the_source(TimestampScenario scenario)
    {
        var clock = new ManualClock(Instant.FromUtc(2026, 6, 1, 8, 0));
        await RunAsync(scenario.Changes, "{name: rows, cdc_method: timestamp}", $"cdc: {{timestamp: {{tolerance_window: {scenario.Changes.Tolerance}, safety_margin: 5s}}}}", clock);
    }

    private static async Task RunAsync(ChangeScenario scenario, string table, string blocks, ManualClock? clock)
    {
        using var workspace = new SyncWorkspace();
        workspace.Source.Execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, name TEXT NOT NULL, amount, updated_at TEXT)");
        var source = new SourceModel(workspace.Source, clock);
        var batchSizes = new Queue<int>(scenario.BatchSizes);
        for (var i = 0; i < scenario.Chunks.Count; i++)
        {
            source.Apply(scenario.Chunks[i]);
            clock?.Advance(Duration.FromMilliseconds(scenario.SyncGapsMs[i]));
            var config = workspace.Configure(SyncYaml.Config(table, batchSizes.Dequeue(), blocks));
            await workspace.RunCompletedAsync(config, clock: clock);
            workspace.AssertSynced("rows", "id");
        }

        var last = workspace.Configure(SyncYaml.Config(table, scenario.BatchSizes[^1], blocks));
        var rerun = await workspace.RunCompletedAsync(last, clock: clock);
        Assert.True(SyncWorkspace.Writes(rerun) == 0, "re-run wrote: " + SyncWorkspace.Describe(rerun));

        // Replay a suffix: make an older checkpoint version current again and run from there.
        var stream = SyncWorkspace.Stream("rows");
        await using (var state = await workspace.OpenStateAsync())
        {
            var newest = (await state.ReadHistoryAsync(stream, 1, CancellationToken.None)).Single().Version;
            var version = 1 + (scenario.ReplayPick % newest);
            await new CheckpointHistory(state, SystemClock.Instance).RollbackAsync(stream, version, CancellationToken.None);
        }

        var replay = await workspace.RunCompletedAsync(last, clock: clock);
        Assert.True(SyncWorkspace.Writes(replay) == 0, "replay wrote: " + SyncWorkspace.Describe(replay));
        workspace.AssertSynced("rows", "id");
    }

    /// <summary>Applies operations to the source table, tracking which keys exist so each operation is meaningful.</summary>
    private sealed class SourceModel(SqliteTestDb db, ManualClock? clock)
    {
        private readonly HashSet<long> _present = [];

        public void Apply(IReadOnlyList<Operation> chunk) => db.Transaction(execute =>
        {
            foreach (var op in chunk)
            {
                var exists = _present.Contains(op.Key);
                var writesExisting = exists && op.Kind is OperationKind.Upsert or OperationKind.Update;
                // Each update stamps a strictly later updated_at than the row had; inserts may tie with earlier rows.
                clock?.Advance(Duration.FromMilliseconds(writesExisting ? Math.Max(1, op.StepMs) : op.StepMs));
                var stamp = ItemsTable.Timestamp(clock?.Now ?? SystemClock.Instance.GetCurrentInstant());
                switch (op.Kind)
                {
                    case OperationKind.Upsert when !exists:
                        execute("INSERT INTO rows (id, name, amount, updated_at) VALUES ($id, $name, $amount, $at)", [("$id", op.Key), ("$name", Name(op.Seed)), ("$amount", Amount(op.Seed)), ("$at", stamp)]);
                        _present.Add(op.Key);
                        break;
                    case OperationKind.Upsert or OperationKind.Update when exists:
                        execute("UPDATE rows SET name = $name, amount = $amount, updated_at = $at WHERE id = $id", [("$id", op.Key), ("$name", Name(op.Seed)), ("$amount", Amount(op.Seed)), ("$at", stamp)]);
                        break;
                    case OperationKind.Delete when exists:
                        execute("DELETE FROM rows WHERE id = $id", [("$id", op.Key)]);
                        _present.Remove(op.Key);
                        break;
                    case OperationKind.ChangeKey when exists && !_present.Contains(op.NewKey):
                        execute("UPDATE rows SET id = $new, updated_at = $at WHERE id = $id", [("$id", op.Key), ("$new", op.NewKey), ("$at", stamp)]);
                        _present.Remove(op.Key);
                        _present.Add(op.NewKey);
                        break;
                }
            }
        });

        private static string Name(int seed) => (seed % 4) switch
        {
            0 => "n" + seed.ToString(CultureInfo.InvariantCulture),
            1 => "",
            2 => "\u00e9t\u00e9 " + seed.ToString(CultureInfo.InvariantCulture),
            _ => "same",
        };

        private static object? Amount(int seed) => (seed % 6) switch
        {
            0 => (long)seed,
            1 => seed / 8.0,
            2 => "t" + seed.ToString(CultureInfo.InvariantCulture),
            3 => new byte[] { (byte)seed, 0 },
            4 => null,
            _ => 0L,
        };
    }
}

public enum OperationKind
{
    Upsert,
    Update,
    Delete,
    ChangeKey,
}

/// <summary>One source write: to key <see cref="Key"/> with values derived from <see cref="Seed"/>, <see cref="StepMs"/> after the previous one.</summary>
public sealed record Operation(OperationKind Kind, long Key, long NewKey, int Seed, int StepMs)
{
    public override string ToString() => Kind switch
    {
        OperationKind.ChangeKey => $"key {Key}->{NewKey}",
        OperationKind.Delete => $"del {Key}",
        _ => $"{(Kind == OperationKind.Upsert ? "put" : "upd")} {Key}={Seed} +{StepMs}ms",
    };
}

/// <summary>Chunks of operations with a sync after each, the batch size of each sync, and the replay target.</summary>
public sealed record ChangeScenario(
    IReadOnlyList<IReadOnlyList<Operation>> Chunks,
    IReadOnlyList<int> BatchSizes,
    IReadOnlyList<int> SyncGapsMs,
    bool Prune,
    string Tolerance,
    int ReplayPick)
{
    public override string ToString() =>
        $"tolerance {Tolerance}, prune {Prune}, replay pick {ReplayPick}; " +
        string.Join(" || ", Chunks.Select((c, i) => $"[{string.Join(", ", c)}] sync(batch {BatchSizes[i]}, +{SyncGapsMs[i]}ms)"));
}

public sealed record TriggerScenario(ChangeScenario Changes)
{
    public override string ToString() => Changes.ToString();
}

public sealed record PollingScenario(ChangeScenario Changes)
{
    public override string ToString() => Changes.ToString();
}

public sealed record TimestampScenario(ChangeScenario Changes)
{
    public override string ToString() => Changes.ToString();
}

/// <summary>Generators: a dozen keys so operations collide (delete and re-insert, update after delete…), no shrinking (each case runs the engine many times).</summary>
public static class ChangeScenarios
{
    public static Arbitrary<TriggerScenario> Trigger() =>
        Scenario([OperationKind.Upsert, OperationKind.Upsert, OperationKind.Update, OperationKind.Delete, OperationKind.ChangeKey]).Select(s => new TriggerScenario(s)).ToArbitrary();

    public static Arbitrary<PollingScenario> Polling() =>
        Scenario([OperationKind.Upsert, OperationKind.Upsert, OperationKind.Update, OperationKind.Delete]).Select(s => new PollingScenario(s)).ToArbitrary();

    public static Arbitrary<TimestampScenario> Timestamp() =>
        Scenario([OperationKind.Upsert, OperationKind.Upsert, OperationKind.Update]).Select(s => new TimestampScenario(s)).ToArbitrary();

    private static Gen<ChangeScenario> Scenario(OperationKind[] kinds) =>
        from chunkCount in Gen.Choose(1, 5)
        from chunks in Gen.ListOf(Chunk(kinds), chunkCount)
        from batchSizes in Gen.ListOf(Gen.Choose(1, 50), chunkCount + 1)
        from gaps in Gen.ListOf(Gen.Frequency((2, Gen.Constant(0)), (3, Gen.Choose(1, 10_000))), chunkCount)
        from prune in Gen.Elements(true, false)
        from tolerance in Gen.Elements("0s", "2s", "5 minutes")
        from replay in Gen.Choose(0, 1000)
        select new ChangeScenario(
            chunks.Select(c => (IReadOnlyList<Operation>)c.ToList()).ToList(),
            batchSizes.ToList(),
            gaps.ToList(),
            prune,
            tolerance,
            replay);

    private static Gen<List<Operation>> Chunk(OperationKind[] kinds) =>
        from count in Gen.Choose(0, 15)
        from ops in Gen.ListOf(Op(kinds), count)
        select ops.ToList();

    private static Gen<Operation> Op(OperationKind[] kinds) =>
        from kind in Gen.Elements(kinds)
        from key in Gen.Choose(1, 12)
        from newKey in Gen.Choose(1, 12)
        from seed in Gen.Choose(0, 50)
        from step in Gen.Frequency((1, Gen.Constant(0)), (3, Gen.Choose(1, 1500)))
        select new Operation(kind, key, newKey, seed, step);
}
