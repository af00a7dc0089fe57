using DeltaSync.Core.Conflicts;
using FsCheck.Xunit;

namespace DeltaSync.Core.Tests.Conflicts;

/// <summary>The small immutable map of record bases behaves like a dictionary in ordinal key order, and never changes in place.</summary>
public sealed class FieldDictionaryTests
{
    private static readonly string[] Names = ["a", "B", "b", "id", "name", "Name", "z", "ä", "_x"];

    [Property(MaxTest = 300)]
    public void Any_sequence_of_operations_matches_a_sorted_dictionary(byte[] operations)
    {
        var map = FieldDictionary<object?>.Empty;
        var model = new SortedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var op in operations ?? [])
        {
            var key = Names[op % Names.Length];
            var before = map;
            var snapshot = before.ToList();
            switch ((op / Names.Length) % 4)
            {
                case 0:
                    map = map.SetItem(key, (long)op);
                    model[key] = (long)op;
                    break;
                case 1:
                    map = map.Remove(key);
                    model.Remove(key);
                    break;
                case 2:
                    var builder = map.ToBuilder();
                    builder[key] = op.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    builder.Remove(Names[(op + 1) % Names.Length]);
                    map = builder.ToImmutable();
                    model[key] = op.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    model.Remove(Names[(op + 1) % Names.Length]);
                    break;
                default:
                    map = map.SetItems([KeyValuePair.Create<string, object?>(key, null)]).RemoveRange([Names[(op + 2) % Names.Length]]);
                    model[key] = null;
                    model.Remove(Names[(op + 2) % Names.Length]);
                    break;
            }

            Assert.Equal(snapshot, before.ToList());
        }

        Assert.Equal(model.ToList(), map.ToList());
        Assert.Equal(model.Count, map.Count);
        foreach (var name in Names)
        {
            Assert.Equal(model.ContainsKey(name), map.ContainsKey(name));
            Assert.Equal(model.GetValueOrDefault(name), map.TryGetValue(name, out var value) ? value : null);
        }
    }

    [Fact]
    public void Setting_a_value_it_already_holds_returns_the_same_map()
    {
        var map = FieldDictionary.From([KeyValuePair.Create<string, object?>("a", 1L), KeyValuePair.Create<string, object?>("b", "x")]);

        Assert.Same(map, map.SetItem("a", 1L));
        Assert.Same(map, map.SetItems([KeyValuePair.Create<string, object?>("b", "x")]));
        Assert.Same(map, map.Remove("missing"));
        Assert.Same(map, map.ToBuilder().ToImmutable());
        Assert.NotSame(map, map.SetItem("a", 2L));
        Assert.Throws<ArgumentException>(() => map.Add("a", 5L));
        Assert.Throws<KeyNotFoundException>(() => map["missing"]);
    }
}
