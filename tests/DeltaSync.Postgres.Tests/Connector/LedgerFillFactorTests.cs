using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Postgres.Destination;

namespace DeltaSync.Postgres.Tests.Connector;

/// <summary>
/// The ledger and the record bases are rewritten in place for every record synced before: their pages keep a fifth
/// free so such a rewrite stays on its page (a HOT update), for ledgers created now and those created before.
/// </summary>
public sealed class LedgerFillFactorTests
{
    [Fact]
    public async Task A_new_ledger_and_an_older_one_keep_room_for_rewritten_entries()
    {
        await using var db = await PgDatabase.CreateAsync("fillfactor");
        await OpenLedgerAsync(db);

        Assert.Equal($"fillfactor={PostgresLedger.FillFactor}", await FillFactorAsync(db, "ledger"));
        Assert.Equal($"fillfactor={PostgresLedger.FillFactor}", await FillFactorAsync(db, "records"));

        // Tables created by an earlier version, without the setting, get it; a fillfactor someone chose stays.
        await db.ExecuteAsync("ALTER TABLE deltasync.ledger RESET (fillfactor)");
        await db.ExecuteAsync("ALTER TABLE deltasync.records SET (fillfactor = 90)");
        Assert.Null(await FillFactorAsync(db, "ledger"));
        await OpenLedgerAsync(db);

        Assert.Equal($"fillfactor={PostgresLedger.FillFactor}", await FillFactorAsync(db, "ledger"));
        Assert.Equal("fillfactor=90", await FillFactorAsync(db, "records"));

        await db.ExecuteAsync("ALTER TABLE deltasync.records RESET (fillfactor)");
        await OpenLedgerAsync(db);

        Assert.Equal($"fillfactor={PostgresLedger.FillFactor}", await FillFactorAsync(db, "records"));
    }

    /// <summary>Opens a destination on <paramref name="db"/> and its ledger, which creates (or migrates) the schema.</summary>
    private static async Task OpenLedgerAsync(PgDatabase db)
    {
        await using var destination = new PostgresDestination(db.Uri);
        await destination.Ledger.LookupAsync(new LedgerScope("items", "source"), [new RecordKey([1L])], CancellationToken.None);
    }

    private static Task<string?> FillFactorAsync(PgDatabase db, string table) =>
        db.ScalarAsync<string?>($"SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = 'deltasync.{table}'::regclass");
}
