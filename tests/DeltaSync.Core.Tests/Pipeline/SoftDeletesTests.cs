using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using NodaTime;

namespace DeltaSync.Core.Tests.Pipeline;

public sealed class SoftDeletesTests
{
    private static readonly TableSchema Schema = new(
        "accounts",
        [
            new ColumnSchema("id", "INTEGER", DataKind.Integer, false, 1, null),
            new ColumnSchema("flag", "", DataKind.Text, true, 0, null),
        ],
        ["id"]);

    private static TablePlan Plan(SoftDeleteOptions? options) =>
        new("s/accounts", "source", "accounts", "accounts", null, CdcMethod.Timestamp, TablePriority.Normal, "updated_at", null, null, null, Duration.FromMinutes(5), Duration.FromSeconds(5), "UTC", "_changes", true)
        {
            SoftDelete = options,
        };

    private static ChangeEvent Row(long id, object? flag, Instant at)
    {
        object?[] values = [id, flag];
        return new ChangeEvent("accounts", new RecordKey([id]), ChangeOperation.Upsert, values, Position.None, at, "source") { RowHash = RowHash.Compute(values) };
    }

    [Fact]
    public void Without_deleted_values_any_non_NULL_flag_deletes_and_a_timestamp_flag_is_the_delete_time()
    {
        var soft = SoftDeletes.For(Plan(new SoftDeleteOptions("flag", null, SoftDeleteMode.Propagate)), Schema)!;
        var at = Instant.FromUtc(2026, 5, 1, 10, 0);
        var batch = new ChangeBatch(Schema, [Row(1, null, at), Row(2, "2026-05-01T09:00:00Z", at), Row(3, 1L, at)], Position.None);

        var (result, deleted) = soft.Apply(batch);

        Assert.Equal(2, deleted);
        Assert.Equal([ChangeOperation.Upsert, ChangeOperation.Delete, ChangeOperation.Delete], result.Events.Select(e => e.Operation));
        Assert.Equal(Instant.FromUtc(2026, 5, 1, 9, 0), result.Events[1].CommitTime);
        // A small number is a flag, not a time in 1970: the row's own time stands.
        Assert.Equal(at, result.Events[2].CommitTime);
        Assert.Null(result.Events[1].Values);
    }

    [Theory]
    [InlineData(1L, true)]
    [InlineData(1.0, true)]
    [InlineData("1", true)]
    [InlineData(true, true)]
    [InlineData("TRUE", true)]
    [InlineData(0L, false)]
    [InlineData(false, false)]
    [InlineData("no", false)]
    [InlineData(null, false)]
    public void Deleted_values_match_by_value_whatever_the_storage_type(object? flag, bool deleted)
    {
        var soft = SoftDeletes.For(Plan(new SoftDeleteOptions("flag", ["1", "true"], SoftDeleteMode.Propagate)), Schema)!;

        Assert.Equal(deleted, soft.IsDeleted(flag));
    }

    [Fact]
    public void Mode_keep_and_no_soft_delete_leave_batches_alone()
    {
        Assert.Null(SoftDeletes.For(Plan(null), Schema));
        Assert.Null(SoftDeletes.For(Plan(new SoftDeleteOptions("flag", null, SoftDeleteMode.Keep)), Schema));
    }

    [Fact]
    public void A_flag_column_the_table_lacks_stops_the_table_naming_it()
    {
        var e = Assert.Throws<SyncException>(() => SoftDeletes.For(Plan(new SoftDeleteOptions("deleted_at", null, SoftDeleteMode.Propagate)), Schema));

        Assert.Equal(ErrorClass.Fatal, e.ErrorClass);
        Assert.Contains("soft_delete.field 'deleted_at'", e.Message, StringComparison.Ordinal);
    }
}
