using DeltaSync.Postgres.Capture;

namespace DeltaSync.Postgres.Tests.Connector;

/// <summary>
/// What <c>status</c> says of a replication slot. A slot whose WAL was removed (wal_status lost) has no restart_lsn, so
/// the WAL it retains is NULL: <c>status</c> failed on it with "unexpected InvalidCastException: Column
/// 'pg_size_pretty' is null", for every table, just when it mattered.
/// </summary>
public sealed class SlotDescriptionTests
{
    [Fact]
    public void A_slot_that_lost_its_wal_is_described_without_retention()
    {
        var text = PostgresWalCapture.DescribeSlot("deltasync_s_items_1", active: false, walStatus: "lost", confirmed: "0/39C5DF30", retained: null);

        Assert.Equal(
            "slot deltasync_s_items_1: idle, wal_status lost (the WAL it still needed was removed, max_slot_wal_keep_size?: "
            + "the next run recreates the slot and re-snapshots the table), confirmed 0/39C5DF30",
            text);
    }

    [Fact]
    public void A_healthy_slot_is_described_with_its_retention()
    {
        Assert.Equal(
            "slot s: active, wal_status reserved, confirmed 0/C9A4650, retains 63 kB of WAL",
            PostgresWalCapture.DescribeSlot("s", active: true, walStatus: "reserved", confirmed: "0/C9A4650", retained: "63 kB"));
    }
}
