using System.Reflection;
using DeltaSync.Core.Config;
using DeltaSync.Core.State;
using DeltaSync.Core.Tests.Config;
using NodaTime;

namespace DeltaSync.Core.Tests.State;

/// <summary><c>status</c>: each table's last run, found among the stored runs newest first.</summary>
public sealed class StateShowTests : IDisposable
{
    private static readonly Instant T0 = Instant.FromUtc(2025, 3, 14, 9, 26, 53);
    private static readonly CancellationToken Ct = CancellationToken.None;

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "deltasync-tests", "show-" + Guid.NewGuid().ToString("N"));
    private readonly SyncConfig _config = ConfigText.Parse(ConfigText.Minimal.Replace("tables: [customers]", "tables: [customers, orders]", StringComparison.Ordinal));
    private readonly FileStateStore _store;

    public StateShowTests()
    {
        _store = new FileStateStore(_folder);
        _store.InitializeAsync(Ct).GetAwaiter().GetResult();
    }

    public void Dispose()
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    [Fact]
    public async Task A_table_the_recent_runs_do_not_name_gets_its_last_run_from_older_ones()
    {
        // The oldest run synced both tables; the twelve after it only orders (run with --table orders).
        await _store.AppendRunAsync(Run(0, ("customers", "failed"), ("orders", "completed")), Ct);
        for (var i = 1; i <= 12; i++)
        {
            await _store.AppendRunAsync(Run(i, ("orders", i == 12 ? "partial" : "completed")), Ct);
        }

        var tables = await new StateAdmin(_config, _store, SystemClock.Instance).ShowAsync(null, Ct);

        var customers = Assert.Single(tables, t => t.Table == "customers");
        var orders = Assert.Single(tables, t => t.Table == "orders");
        Assert.Equal(("run-0", "failed"), (customers.LastRunId, customers.LastRunStatus));
        Assert.Equal(("run-12", "partial"), (orders.LastRunId, orders.LastRunStatus));
    }

    [Fact]
    public async Task When_the_newest_runs_name_every_table_no_older_run_is_read()
    {
        for (var i = 0; i < 9; i++)
        {
            await _store.AppendRunAsync(Run(i, ("customers", "completed"), ("orders", "completed")), Ct);
        }

        var counting = CountingStore.Over(_store);
        var tables = await new StateAdmin(_config, counting, SystemClock.Instance).ShowAsync(null, Ct);

        Assert.All(tables, t => Assert.Equal("run-8", t.LastRunId));
        Assert.Equal([5], ((CountingStore)(object)counting).RunLimits);
    }

    [Fact]
    public async Task With_several_sources_each_source_of_a_table_gets_its_own_last_run()
    {
        var config = ConfigText.Parse("""
            sync:
              sources:
                - {name: crm, connection: "sqlite:crm.db", tables: [customers]}
                - {name: shop, connection: "sqlite:shop.db", tables: [customers]}
              destination:
                connection: "sqlite:dest.db"
            """);
        await _store.AppendRunAsync(Run(0, ("customers", "completed", "shop")), Ct);
        for (var i = 1; i <= 6; i++)
        {
            await _store.AppendRunAsync(Run(i, ("customers", i == 6 ? "partial" : "completed", "crm")), Ct);
        }

        var tables = await new StateAdmin(config, _store, SystemClock.Instance).ShowAsync(null, Ct);

        Assert.Equal(("run-6", "partial"), tables.Where(t => t.Source == "crm").Select(t => (t.LastRunId, t.LastRunStatus)).Single());
        Assert.Equal(("run-0", "completed"), tables.Where(t => t.Source == "shop").Select(t => (t.LastRunId, t.LastRunStatus)).Single());
    }

    [Fact]
    public async Task A_table_no_run_names_has_no_last_run()
    {
        for (var i = 0; i < 7; i++)
        {
            await _store.AppendRunAsync(Run(i, ("orders", "completed")), Ct);
        }

        var tables = await new StateAdmin(_config, _store, SystemClock.Instance).ShowAsync(["customers"], Ct);

        Assert.Null(Assert.Single(tables).LastRunId);
    }

    private static RunRecord Run(int index, params (string Table, string Status)[] tables) =>
        Run(index, tables.Select(t => (t.Table, t.Status, (string?)null)).ToArray());

    private static RunRecord Run(int index, params (string Table, string Status, string? Source)[] tables) => new(
        $"run-{index}",
        T0 + Duration.FromMinutes(index),
        "completed",
        "{\"tables\": [" + string.Join(", ", tables.Select(t => $"{{\"table\": \"{t.Table}\", \"status\": \"{t.Status}\"" + (t.Source is null ? "" : $", \"source\": \"{t.Source}\"") + "}")) + "]}");

    /// <summary>A state store that passes every call through and notes the limit of each run read.</summary>
    public class CountingStore : DispatchProxy
    {
        private IStateStore _inner = null!;

        public List<int> RunLimits { get; } = [];

        public static IStateStore Over(IStateStore inner)
        {
            var proxy = Create<IStateStore, CountingStore>();
            ((CountingStore)(object)proxy)._inner = inner;
            return proxy;
        }

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            ArgumentNullException.ThrowIfNull(targetMethod);
            if (targetMethod.Name == nameof(IStateStore.ReadRunsAsync))
            {
                RunLimits.Add((int)args![0]!);
            }

            return targetMethod.Invoke(_inner, args);
        }
    }
}
