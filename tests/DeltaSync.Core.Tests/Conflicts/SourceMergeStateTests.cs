using DeltaSync.Core.Conflicts;
using DeltaSync.Core.Pipeline;
using NodaTime;

namespace DeltaSync.Core.Tests.Conflicts;

/// <summary>A source's fast-merge state survives its stored form; anything else reads as no state (the full merge runs).</summary>
public sealed class SourceMergeStateTests
{
    private static readonly FieldDictionary<object?> Changed = FieldDictionary.From(new Dictionary<string, object?>
    {
        ["blob"] = new byte[] { 0, 1, 255 },
        ["flag"] = true,
        ["list"] = new List<object?> { 1L, "two", null },
        ["name"] = "Zoë ✓",
        ["none"] = null,
        ["price"] = 12.5,
        ["qty"] = long.MinValue,
    });

    [Fact]
    public void A_state_with_its_tail_reads_back_as_written()
    {
        var state = new SourceMergeState(
            7,
            true,
            -1234567890123456789,
            42,
            99,
            [1, -2, long.MaxValue],
            FieldDictionary.From(new Dictionary<string, object?> { ["updated_at"] = "2026-12-07T10:00:00.000Z" }))
            .Appending(new FastVersion(Instant.FromUtc(2026, 12, 7, 10, 0), 41, FieldDictionary<object?>.Empty))
            .Appending(new FastVersion(Instant.FromUnixTimeTicks(-5), 42, Changed));

        var read = SourceMergeState.Decode(state.Encode());

        Assert.NotNull(read);
        Assert.Equal((state.Epoch, state.Eligible, state.RowDigest, state.Sequence, state.FieldsId), (read.Epoch, read.Eligible, read.RowDigest, read.Sequence, read.FieldsId));
        Assert.Equal(state.FieldDigests, read.FieldDigests);
        Assert.Equal("2026-12-07T10:00:00.000Z", read.Tracking["updated_at"]);
        Assert.Equal(2, read.TailCount);
        Assert.Equal(2, read.Tail.Count);
        Assert.Equal(state.Tail[0].Time, read.Tail[0].Time);
        Assert.Empty(read.Tail[0].Changed);
        Assert.Equal(Instant.FromUnixTimeTicks(-5), read.Tail[1].Time);
        Assert.Equal(42, read.Tail[1].Sequence);
        Assert.Equal(Changed.Keys, read.Tail[1].Changed.Keys);
        foreach (var (field, value) in Changed)
        {
            Assert.True(FieldValues.Same(value, read.Tail[1].Changed[field]), field);
        }
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { 2, 0 })]
    [InlineData(new byte[] { 3, 0xFF, 0xFF })]
    [InlineData(new byte[] { (byte)'{', (byte)'}' })]
    public void Bytes_that_are_not_a_state_of_this_format_read_as_none(byte[] bytes) =>
        Assert.Null(SourceMergeState.Decode(bytes));

    [Fact]
    public void A_truncated_state_reads_as_none()
    {
        var bytes = new SourceMergeState(1, true, 5, 1, 2, [3], FieldDictionary<object?>.Empty).Appending(new FastVersion(Instant.FromUtc(2026, 1, 1, 0, 0), 1, Changed)).Encode();
        for (var length = 1; length < bytes.Length; length++)
        {
            Assert.Null(SourceMergeState.Decode(bytes[..length]));
        }
    }

    [Fact]
    public void A_count_larger_than_the_bytes_left_reads_as_none_without_allocating_it()
    {
        var bytes = new SourceMergeState(1, true, 5, 1, 2, [3], FieldDictionary<object?>.Empty).Encode();
        // Format, epoch, eligible, digest, sequence, fields id: then the digests' count, here 2^40.
        var header = 1 + 1 + 1 + 8 + 1 + 8;
        byte[] huge = [.. bytes[..header], 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, .. bytes[(header + 1)..]];
        Assert.Null(SourceMergeState.Decode(huge));
    }

    public static TheoryData<object?, object?> SameValues() => new()
    {
        { 2L, 2.0 },
        { 0L, -0.0 },
        { 0.30000000000000004, 0.3 },
        { 2.5, 2.50m },
        { true, "true" },
        { "Zoë", "Zoë" },
        { new byte[] { 1, 2 }, new byte[] { 1, 2 } },
        { new byte[] { 1, 2 }, "AQI=" },
        { double.NaN, BitConverter.Int64BitsToDouble(0x7FF8000000000001) },
        { null, null },
    };

    public static TheoryData<object?, object?> OtherValues() => new()
    {
        { true, 1L },
        { "2", 2L },
        { null, "" },
        { 2L, 3L },
        { 1e300, 1e299 },
        { new byte[] { 1 }, new byte[] { 1, 0 } },

    };

    [Theory]
    [MemberData(nameof(SameValues))]
    public void Values_the_engine_holds_the_same_digest_alike(object? a, object? b)
    {
        Assert.True(FieldValues.Same(a, b));
        Assert.Equal(FieldValues.Digest(a), FieldValues.Digest(b));
    }

    [Theory]
    [MemberData(nameof(OtherValues))]
    public void Values_the_engine_holds_different_digest_apart(object? a, object? b)
    {
        Assert.False(FieldValues.Same(a, b));
        Assert.NotEqual(FieldValues.Digest(a), FieldValues.Digest(b));
    }

    [Fact]
    public void Values_that_read_back_alike_digest_alike_and_others_apart()
    {
        Assert.Equal(MergedRowDigest.Of([2L]), MergedRowDigest.Of([2.0]));
        Assert.Equal(MergedRowDigest.Of([1L]), MergedRowDigest.Of([true]));
        Assert.Equal(MergedRowDigest.Of([7L]), MergedRowDigest.Of([7]));
        Assert.NotEqual(MergedRowDigest.Of([0L]), MergedRowDigest.Of([-0.0]));
        Assert.NotEqual(MergedRowDigest.Of([2L]), MergedRowDigest.Of([2.5]));
        Assert.NotEqual(MergedRowDigest.Of(["2"]), MergedRowDigest.Of([2L]));
        Assert.NotEqual(MergedRowDigest.Of([null]), MergedRowDigest.Of([""]));
        Assert.NotEqual(MergedRowDigest.Of(["ab", "c"]), MergedRowDigest.Of(["a", "bc"]));
    }
}
