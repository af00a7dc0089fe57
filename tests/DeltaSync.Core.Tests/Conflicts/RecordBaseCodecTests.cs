using DeltaSync.Core.Conflicts;
using FsCheck.Xunit;
using NodaTime;
using static DeltaSync.Core.Tests.Conflicts.ConflictFixtures;

namespace DeltaSync.Core.Tests.Conflicts;

/// <summary>
/// The stored form of a record base: what is decoded is what was encoded (so merging on top of a stored base gives the
/// same result as merging on the base in memory), the text is deterministic (unchanged bases are not rewritten), and
/// bases stored by an earlier format still read.
/// </summary>
public sealed class RecordBaseCodecTests
{
    [Property(Arbitrary = new[] { typeof(TwoSourceHistories) }, MaxTest = 200)]
    public void A_stored_base_merges_exactly_like_the_base_it_was_encoded_from(Interleaving history)
    {
        foreach (var engine in new[] { Engine("last_write_wins"), Engine("source_wins"), Engine("manual_review") })
        {
            var half = history.Interleaved.Count / 2;
            var merged = engine.Merge(Synced(), history.Interleaved.Take(half), Now).Record;
            var text = RecordBaseCodec.Encode(merged);

            var decoded = RecordBaseCodec.Decode(merged.Key, text);

            Assert.Equal(text, RecordBaseCodec.Encode(decoded));
            AssertSameBase(merged, decoded);
            var rest = history.Interleaved.Skip(half).ToList();
            var fromMemory = engine.Merge(merged, rest, Now);
            var fromStore = engine.Merge(decoded, rest, Now);
            Assert.Equal(RecordBaseCodec.Encode(fromMemory.Record), RecordBaseCodec.Encode(fromStore.Record));
            Assert.Equal(fromMemory.Conflicts.Select(c => c.Conflict.ConflictId), fromStore.Conflicts.Select(c => c.Conflict.ConflictId));
        }
    }

    [Fact]
    public void Every_value_type_survives_a_round_trip()
    {
        var values = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["id"] = 42L,
            ["big"] = long.MaxValue,
            ["price"] = 19.99,
            ["ratio"] = double.NaN,
            ["name"] = "Ada \"quoted\" \u00e9\u4e2d",
            ["active"] = true,
            ["none"] = null,
            ["blob"] = new byte[] { 0, 1, 254, 255 },
            ["tags"] = new List<object?> { "a", 1L, null },
            ["small"] = 7,
            ["amount"] = 12.50m,
        };
        var record = RecordBase.Synced("42", values.ToDictionary(p => p.Key, p => RecordBaseCodec.Normalize(p.Value), StringComparer.Ordinal), "crm", "shop");

        var decoded = RecordBaseCodec.Decode("42", RecordBaseCodec.Encode(record));

        AssertSameBase(record, decoded);
        Assert.Equal<object?>(42L, decoded.Values["id"]);
        Assert.Equal<object?>(long.MaxValue, decoded.Values["big"]);
        Assert.Equal<object?>(19.99, decoded.Values["price"]);
        Assert.True(double.IsNaN(Convert.ToDouble(decoded.Values["ratio"], System.Globalization.CultureInfo.InvariantCulture)) || decoded.Values["ratio"] is "NaN");
        Assert.Equal("Ada \"quoted\" \u00e9\u4e2d", decoded.Values["name"]);
        Assert.Equal<object?>(true, decoded.Values["active"]);
        Assert.Null(decoded.Values["none"]);
        Assert.Equal(new byte[] { 0, 1, 254, 255 }, (byte[])decoded.Values["blob"]!);
        Assert.Equal(new List<object?> { "a", 1L, null }, (List<object?>)decoded.Values["tags"]!);
        Assert.Equal<object?>(7L, decoded.Values["small"]);
        Assert.Equal<object?>(12.5, decoded.Values["amount"]);
    }

    [Fact]
    public void Source_views_that_differ_from_the_merged_values_keep_their_own_values_and_missing_fields()
    {
        var record = RecordBase.Synced("7", new Dictionary<string, object?> { ["email"] = "a@x", ["phone"] = "1", ["tags"] = "t" }, "crm", "shop") with
        {
            Writers = FieldDictionary<WriteStamp>.Empty.Add("email", new WriteStamp("crm", Nine, 3)),
            SourceStamps = FieldDictionary<WriteStamp>.Empty.Add("crm", new WriteStamp("crm", Nine, 3)).Add("shop", new WriteStamp("shop", Nine - Duration.FromHours(1), 9)),
        };
        record = record with
        {
            SourceViews = record.SourceViews
                .SetItem("shop", record.Values.SetItem("email", "old@x").Remove("tags").Add("extra", 5L))
                .SetItem("late", FieldDictionary<object?>.Empty),
        };

        var decoded = RecordBaseCodec.Decode("7", RecordBaseCodec.Encode(record));

        AssertSameBase(record, decoded);
        Assert.False(decoded.SourceViews["shop"].ContainsKey("tags"));
        Assert.Equal("old@x", decoded.SourceViews["shop"]["email"]);
        Assert.Equal<object?>(5L, decoded.SourceViews["shop"]["extra"]);
        Assert.Empty(decoded.SourceViews["late"]);
        Assert.Same(decoded.Values, decoded.SourceViews["crm"]);
    }

    [Fact]
    public void Fields_no_view_holds_are_stored_once_and_views_equal_to_the_rest_stay_empty()
    {
        // The tracking column: in the merged values (the destination keeps its maximum), never in a source's view.
        var seen = FieldDictionary.From(new Dictionary<string, object?> { ["id"] = 7L, ["name"] = "Ann" });
        var record = RecordBase.Synced("7", seen, "crm", "shop") with { Values = seen.SetItem("updated_at", "2026-12-07T00:00:00Z") };

        var text = RecordBaseCodec.Encode(record);
        var decoded = RecordBaseCodec.Decode("7", text);

        Assert.Contains("\"m\":[\"updated_at\"]", text, StringComparison.Ordinal);
        Assert.Contains("\"s\":{\"crm\":{},\"shop\":{}}", text, StringComparison.Ordinal);
        AssertSameBase(record, decoded);
        Assert.False(decoded.SourceViews["crm"].ContainsKey("updated_at"));
        Assert.Same(decoded.SourceViews["crm"], decoded.SourceViews["shop"]);
    }

    [Fact]
    public void A_view_whose_integral_double_is_the_merged_integer_is_stored_as_no_difference()
    {
        // A REAL column read from a source (230.0) and the same value read back from the destination or a stored base
        // (230): JSON writes both as 230, so the view holds no difference and the text survives a round trip unchanged.
        var merged = FieldDictionary.From(new Dictionary<string, object?> { ["id"] = 7L, ["price"] = 230L });
        var record = RecordBase.Synced("7", merged, "crm") with
        {
            SourceViews = FieldDictionary.Of("crm", merged.SetItem("price", 230.0)),
        };

        var text = RecordBaseCodec.Encode(record);

        Assert.Contains("\"s\":{\"crm\":{}}", text, StringComparison.Ordinal);
        Assert.Equal(text, RecordBaseCodec.Encode(RecordBaseCodec.Decode("7", text)));
        var fractional = RecordBaseCodec.Encode(record with { SourceViews = FieldDictionary.Of("crm", merged.SetItem("price", 230.5)) });
        Assert.Contains("\"crm\":{\"price\":230.5}", fractional, StringComparison.Ordinal);

        // The extremes of a long against a double are compared, not negated.
        foreach (var (view, value) in new (object, object)[] { (long.MinValue, 1.5), (1.5, long.MinValue), (long.MaxValue, 9.2233720368547758E18), (-0.0, 0L) })
        {
            var extreme = RecordBaseCodec.Encode(record with
            {
                Values = merged.SetItem("price", value),
                SourceViews = FieldDictionary.Of("crm", merged.SetItem("price", view)),
            });
            Assert.Contains("\"crm\":{\"price\":", extreme, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_base_stored_in_the_first_format_still_reads()
    {
        const string stored = """
            {"f":1,"e":true,"x":["a",17966018853810000,3],"v":{"id":11,"name":"Lamp (a)","price":657.39,"blob":{"$b":"AAH/"},"updated_at":"2026-12-07T00:04:45.381Z"},"w":{"name":["a",17966018853810000,3]},"s":{"a":{"id":11,"name":"Lamp (a)","price":657.39,"blob":{"$b":"AAH/"}},"b":{"id":11,"name":"Lamp","price":657.39}},"t":{"a":["a",17966018853810000,3],"b":["b",17812389185880000,1]},"h":{"price":{"c":"conflict_0011","k":{"a":{"t":["a",17966018853810000,3],"d":false,"v":{"price":657.39}},"b":{"t":["b",17812389185880000,1],"d":false,"v":{"price":1.5}}},"p":{"t":["b",17812389185880000,1],"d":false,"v":{"price":1.5}}}}}
            """;

        var record = RecordBaseCodec.Decode("11", stored);

        Assert.True(record.Exists);
        Assert.Equal(new WriteStamp("a", Instant.FromUnixTimeTicks(17966018853810000), 3), record.Existence);
        Assert.Equal("Lamp (a)", record.Values["name"]);
        Assert.Equal(new byte[] { 0, 1, 255 }, (byte[])record.Values["blob"]!);
        Assert.Equal("Lamp", record.SourceViews["b"]["name"]);
        Assert.False(record.SourceViews["b"].ContainsKey("blob"));
        Assert.Equal(1L, record.SourceStamps["b"].Sequence);
        var hold = record.Holds["price"];
        Assert.Equal("conflict_0011", hold.ConflictId);
        Assert.Equal<object?>(1.5, hold.Candidates["b"].Values["price"]);
        Assert.Equal("b", hold.Proposed!.Source);
        AssertSameBase(record, RecordBaseCodec.Decode("11", RecordBaseCodec.Encode(record)));
    }

    [Theory]
    [InlineData("")]
    [InlineData("not json")]
    [InlineData("{\"f\":2}")]
    [InlineData("{\"f\":2,\"e\":true,\"v\":{\"a\":1},\"w\":{},\"s\":{\"x\":[1]},\"t\":{}}")]
    [InlineData("{\"f\":99,\"e\":true,\"v\":{},\"w\":{},\"s\":{},\"t\":{}}")]
    public void Unreadable_text_is_a_format_error_naming_the_record(string text)
    {
        var error = Assert.Throws<FormatException>(() => RecordBaseCodec.Decode("k1", text));

        Assert.Contains("'k1'", error.Message, StringComparison.Ordinal);
    }

    private static void AssertSameBase(RecordBase expected, RecordBase actual)
    {
        Assert.Equal(expected.Exists, actual.Exists);
        Assert.Equal(expected.Existence, actual.Existence);
        Assert.Equal(expected.InsertedBy, actual.InsertedBy);
        AssertSameValues(expected.Values, actual.Values);
        Assert.Equal(expected.Writers.OrderBy(p => p.Key, StringComparer.Ordinal), actual.Writers.OrderBy(p => p.Key, StringComparer.Ordinal));
        Assert.Equal(expected.SourceStamps.OrderBy(p => p.Key, StringComparer.Ordinal), actual.SourceStamps.OrderBy(p => p.Key, StringComparer.Ordinal));
        Assert.Equal(expected.SourceViews.Keys.Order(StringComparer.Ordinal), actual.SourceViews.Keys.Order(StringComparer.Ordinal));
        foreach (var (source, view) in expected.SourceViews)
        {
            AssertSameValues(view, actual.SourceViews[source]);
        }

        Assert.Equal(expected.Holds.Keys.Order(StringComparer.Ordinal), actual.Holds.Keys.Order(StringComparer.Ordinal));
        foreach (var (field, hold) in expected.Holds)
        {
            var other = actual.Holds[field];
            Assert.Equal(hold.ConflictId, other.ConflictId);
            Assert.Equal(hold.Field, other.Field);
            Assert.Equal(hold.Candidates.Keys.Order(StringComparer.Ordinal), other.Candidates.Keys.Order(StringComparer.Ordinal));
            foreach (var (source, candidate) in hold.Candidates)
            {
                Assert.Equal(candidate.Stamp, other.Candidates[source].Stamp);
                Assert.Equal(candidate.Deleted, other.Candidates[source].Deleted);
                AssertSameValues(candidate.Values, other.Candidates[source].Values);
            }

            Assert.Equal(hold.Proposed?.Stamp, other.Proposed?.Stamp);
        }
    }

    private static void AssertSameValues(IReadOnlyDictionary<string, object?> expected, IReadOnlyDictionary<string, object?> actual)
    {
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (field, value) in expected)
        {
            var normalized = RecordBaseCodec.Normalize(value);
            var other = actual[field];
            if (normalized is double d && !double.IsFinite(d))
            {
                continue;
            }

            Assert.True(Equivalent(normalized, other), $"{field}: expected {Show(normalized)}, got {Show(other)}");
        }
    }

    private static bool Equivalent(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (byte[] x, byte[] y) => x.AsSpan().SequenceEqual(y),
        (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => Equivalent(p.First, p.Second)),
        (long x, double y) => x == y,
        (double x, long y) => x == y,
        _ => Equals(a, b),
    };

    private static string Show(object? value) => value is null ? "null" : $"{value} ({value.GetType().Name})";
}
