using DeltaSync.Core.Conflicts;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using NodaTime;
using static DeltaSync.Core.Tests.Conflicts.ConflictFixtures;

namespace DeltaSync.Core.Tests.Conflicts;

/// <summary>
/// Invariant: under last-write-wins and under source priority the destination does not depend on the order the engine
/// sees changes from two sources in (each source's own changes keep their order), nor on how they are split into
/// merges, and replaying them changes nothing.
/// </summary>
public sealed class ConflictOrderPropertyTests
{
    [Property(Arbitrary = new[] { typeof(TwoSourceHistories) }, MaxTest = 300)]
    public void Last_write_wins_result_does_not_depend_on_interleaving(Interleaving history) =>
        AssertOrderIndependent(Engine("last_write_wins"), history);

    [Property(Arbitrary = new[] { typeof(TwoSourceHistories) }, MaxTest = 300)]
    public void Source_priority_result_does_not_depend_on_interleaving(Interleaving history) =>
        AssertOrderIndependent(Engine("source_wins"), history);

    [Property(Arbitrary = new[] { typeof(TwoSourceHistories) }, MaxTest = 200)]
    public void Replaying_the_same_versions_again_changes_nothing(Interleaving history)
    {
        foreach (var engine in new[] { Engine("last_write_wins"), Engine("source_wins"), Engine("manual_review") })
        {
            var merged = engine.Merge(Synced(), history.Versions, Now);

            var replayed = engine.Merge(merged.Record, history.Interleaved, Now);

            Assert.Same(merged.Record, replayed.Record);
            Assert.Empty(replayed.Conflicts);
            Assert.Empty(replayed.HeldUpdates);
        }
    }

    private static void AssertOrderIndependent(ConflictEngine engine, Interleaving history)
    {
        var batch = engine.Merge(Synced(), history.Versions, Now).Record;
        var oneByOne = history.Interleaved.Aggregate(Synced(), (record, version) => engine.Apply(record, version, Now).Record);
        var reversedBatch = engine.Merge(Synced(), history.Versions.AsEnumerable().Reverse(), Now).Record;

        Assert.True(Destination(batch) == Destination(oneByOne), $"{history}\nbatch:       {Destination(batch)}\none by one:  {Destination(oneByOne)}");
        Assert.Equal(Destination(batch), Destination(reversedBatch));
    }
}

/// <summary>Changes of sources <c>crm</c> and <c>shop</c> (each in its own order, clocks moving forward, ties across sources) and one interleaving of them.</summary>
public sealed record Interleaving(IReadOnlyList<RecordVersion> Versions, IReadOnlyList<RecordVersion> Interleaved)
{
    public override string ToString() => "interleaving:\n  " + string.Join("\n  ", Interleaved.Select(v =>
        $"{v.Source}#{v.Sequence} {v.CommitTime} {(v.Operation == VersionOperation.Delete ? "DELETE" : string.Join(" ", v.Values.Select(p => $"{p.Key}={p.Value}")))}"));
}

public static class TwoSourceHistories
{
    private static readonly string[] Fields = ["email", "phone", "tags"];

    public static Arbitrary<Interleaving> Histories() =>
        Gen.Zip(History("crm"), History("shop"))
            .SelectMany(h => Gen.ListOf(Gen.Elements(true, false), h.Item1.Count + h.Item2.Count).Select(picks => Interleave(h.Item1, h.Item2, picks)))
            .ToArbitrary();

    private static Gen<List<RecordVersion>> History(string source) =>
        Gen.Choose(0, 6).SelectMany(n => Gen.ListOf(Change(), n)).Select(changes =>
        {
            var minute = 0;
            var versions = new List<RecordVersion>();
            for (var i = 0; i < changes.Count; i++)
            {
                var (step, delete, values) = changes[i];
                minute += step;
                var at = Nine + Duration.FromMinutes(minute);
                versions.Add(delete
                    ? RecordVersion.Delete(source, Key, at, i + 1)
                    : RecordVersion.Upsert(source, Key, values, at, i + 1));
            }

            return versions;
        });

    private static Gen<(int Step, bool Delete, Dictionary<string, object?> Values)> Change() =>
        from step in Gen.Choose(0, 3)
        from delete in Gen.Frequency((1, Gen.Constant(true)), (5, Gen.Constant(false)))
        from count in Gen.Choose(1, 3)
        from fields in Gen.Shuffle(Fields)
        from values in Gen.ListOf(Gen.Choose(0, 3), count)
        select (step, delete, fields.Take(count).Zip(values).ToDictionary(p => p.First, p => (object?)$"v{p.Second}", StringComparer.Ordinal));

    private static Interleaving Interleave(List<RecordVersion> crm, List<RecordVersion> shop, IReadOnlyList<bool> picks)
    {
        var result = new List<RecordVersion>();
        int i = 0, j = 0;
        foreach (var pickCrm in picks)
        {
            if ((pickCrm && i < crm.Count) || j >= shop.Count)
            {
                result.Add(crm[i++]);
            }
            else
            {
                result.Add(shop[j++]);
            }
        }

        return new Interleaving(crm.Concat(shop).ToList(), result);
    }
}
