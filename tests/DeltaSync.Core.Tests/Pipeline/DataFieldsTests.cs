using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;

namespace DeltaSync.Core.Tests.Pipeline;

/// <summary>A change's values as the conflict path merges them: data fields only, normalized, in name order.</summary>
public sealed class DataFieldsTests
{
    private static readonly TableSchema Schema = new(
        "items",
        [
            new ColumnSchema("id", "INTEGER", DataKind.Integer, false, 1),
            new ColumnSchema("name", "TEXT", DataKind.Text, true, 0),
            new ColumnSchema("updated_at", "TEXT", DataKind.Text, true, 0),
            new ColumnSchema("count", "INTEGER", DataKind.Integer, true, 0),
        ],
        ["id"]);

    private static readonly Dictionary<string, int> Tracking = new(StringComparer.Ordinal) { ["updated_at"] = 2 };

    [Fact]
    public void A_full_row_becomes_its_data_fields_in_name_order_sharing_the_names_between_rows()
    {
        var fields = DataFields.Of(Schema, Tracking);

        var first = fields.ValuesOf([7, "Ann", "2026-01-01", (short)3]);
        var second = fields.ValuesOf([8L, "Bob", "2026-01-02", 4L]);

        Assert.Equal(["count", "id", "name"], first.Keys);
        Assert.Equal([3L, 7L, "Ann"], first.Values);
        Assert.Same(first.Keys, second.Keys);
        Assert.False(first.ContainsKey("updated_at"));
    }

    [Fact]
    public void A_row_narrower_than_the_table_has_only_the_fields_it_carries()
    {
        var values = DataFields.Of(Schema, Tracking).ValuesOf([7L, "Ann"]);

        Assert.Equal(["id", "name"], values.Keys);
        Assert.Equal([7L, "Ann"], values.Values);
    }
}
