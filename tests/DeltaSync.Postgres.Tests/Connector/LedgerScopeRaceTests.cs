using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Postgres.Destination;

namespace DeltaSync.Postgres.Tests.Connector;

public sealed class LedgerScopeRaceTests
{
    [Fact]
    public async Task Two_writers_creating_the_same_ledger_scopes_at_once_both_get_them()
    {
        await using var db = await PgDatabase.CreateAsync("scope");
        await using var first = new PostgresDestination(db.Uri);
        await using var second = new PostgresDestination(db.Uri);
        var key = new RecordKey([1L]);

        for (var i = 0; i < 40; i++)
        {
            var scope = new LedgerScope("table_" + i, "source");
            var lookups = await Task.WhenAll(
                first.Ledger.LookupAsync(scope, [key], CancellationToken.None).AsTask(),
                second.Ledger.LookupAsync(scope, [key], CancellationToken.None).AsTask());
            Assert.All(lookups, Assert.Empty);
        }

        Assert.Equal(40L, await db.ScalarAsync<long>("SELECT count(*) FROM deltasync.ledger_scopes"));
    }
}
