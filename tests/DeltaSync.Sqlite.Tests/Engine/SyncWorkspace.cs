using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.Reporting;
using DeltaSync.Core.State;
using DeltaSync.Sqlite.State;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using NodaTime;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>
/// A fresh folder holding <c>sync.yaml</c>'s world: <c>source.db</c>, <c>dest.db</c>, the state file
/// <c>sync.state.db</c> and the reports. Runs the real engine on configs parsed as if read from that folder.
/// </summary>
internal sealed class SyncWorkspace : IDisposable
{
    public const string SyncName = "sync";

    private int _runs;

    public SyncWorkspace()
    {
        Folder = Path.Combine(Path.GetTempPath(), "deltasync-tests", "engine-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Folder);
        Source = new SqliteTestDb(Path.Combine(Folder, "source.db"));
        Destination = new SqliteTestDb(Path.Combine(Folder, "dest.db"));
        State = new SqliteTestDb(StatePath);
    }

    public string Folder { get; }

    public string ConfigPath => Path.Combine(Folder, SyncName + ".yaml");

    /// <summary>The default state store: <c>&lt;config-name&gt;.state.db</c> beside the config.</summary>
    public string StatePath => Path.Combine(Folder, SyncName + ".state.db");

    public SqliteTestDb Source { get; }

    public SqliteTestDb Destination { get; }

    /// <summary>The state database, for tests that damage it on purpose.</summary>
    public SqliteTestDb State { get; }

    public static string Stream(string table) => TablePlan.StreamName(SyncName, table);

    public SyncConfig Configure(string yaml) => ConfigLoader.Parse(yaml, ConfigPath, _ => null);

    /// <summary>One engine pass; <paramref name="clock"/> is the engine's and the source's clock (the system clock by default).</summary>
    public async Task<SyncReport> RunAsync(SyncConfig config, bool fullRefresh = false, IClock? clock = null, bool reconcile = false)
    {
        clock ??= SystemClock.Instance;
        var engine = new SyncEngine(config, new ConnectorRegistry().Add(new SqliteConnector(clock)), clock, NullLogger.Instance);
        var reportPath = Path.Combine(Folder, "reports", $"run-{Interlocked.Increment(ref _runs):D3}.json");
        var outcome = await engine.RunOnceAsync(new RunOptions([], fullRefresh, reportPath) { Reconcile = reconcile }, null, CancellationToken.None);
        Assert.True(File.Exists(outcome.ReportPath), "the run wrote no report");
        return outcome.Report;
    }

    /// <summary>Runs and requires the run to have completed (no failed table, nothing dead-lettered).</summary>
    public async Task<SyncReport> RunCompletedAsync(SyncConfig config, bool fullRefresh = false, IClock? clock = null, bool reconcile = false)
    {
        var report = await RunAsync(config, fullRefresh, clock, reconcile);
        Assert.True(report.Metadata.Status == "completed", $"run status {report.Metadata.Status}: {Describe(report)}");
        return report;
    }

    /// <summary>The destination table equals the source table: same rows, same values, same storage classes.</summary>
    public void AssertSynced(string table, params string[] key)
    {
        var columns = Source.Columns(table);
        Assert.True(Destination.TableExists(table), $"destination has no table '{table}'");
        var missing = columns.Except(Destination.Columns(table), StringComparer.OrdinalIgnoreCase).ToList();
        Assert.True(missing.Count == 0, $"destination table '{table}' lacks column(s) {string.Join(", ", missing)}");
        AssertSameRows(Source.Dump(table, columns, key), Destination.Dump(table, columns, key), table);
    }

    /// <summary>Equal row dumps, or a message listing the first differences (source line, then destination line).</summary>
    public static void AssertSameRows(IReadOnlyList<string> source, IReadOnlyList<string> destination, string table)
    {
        if (source.SequenceEqual(destination))
        {
            return;
        }

        var onlySource = source.Except(destination).Take(5).Select(r => "  source only: " + r);
        var onlyDestination = destination.Except(source).Take(5).Select(r => "  destination only: " + r);
        Assert.Fail($"'{table}' differs: source has {source.Count} rows, destination {destination.Count}\n{string.Join("\n", onlySource.Concat(onlyDestination))}");
    }

    public async Task<SqliteStateStore> OpenStateAsync()
    {
        var store = new SqliteStateStore(StatePath);
        await store.InitializeAsync(CancellationToken.None);
        return store;
    }

    /// <summary>The newest valid checkpoint of a table, read through the state store.</summary>
    public async Task<Checkpoint> NewestCheckpointAsync(string table)
    {
        await using var store = await OpenStateAsync();
        var newest = (await store.ReadHistoryAsync(Stream(table), 1, CancellationToken.None)).Single();
        var checkpoint = CheckpointCodec.TryDeserialize(newest.Payload, out var problem);
        Assert.True(checkpoint is not null, $"newest checkpoint of '{table}' is unreadable: {problem}");
        return checkpoint;
    }

    public static long Writes(SyncReport report) =>
        report.Statistics.RecordsInserted + report.Statistics.RecordsUpdated + report.Statistics.RecordsDeleted;

    public static string Describe(SyncReport report) =>
        $"inserted {report.Statistics.RecordsInserted}, updated {report.Statistics.RecordsUpdated}, deleted {report.Statistics.RecordsDeleted}; " +
        $"errors: [{string.Join("; ", report.Errors.Select(e => e.Message))}]; tables: [{string.Join("; ", report.Tables.Select(t => $"{t.Table} {t.Status} {t.Error}"))}]";

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
            // A file still open elsewhere; the temp folder is cleaned by the system.
        }
    }
}

/// <summary>A clock the test moves by hand, shared by the engine and the SQLite source (its "server" clock).</summary>
internal sealed class ManualClock : IClock
{
    private long _ticks;

    public ManualClock(Instant start)
    {
        _ticks = start.ToUnixTimeTicks();
    }

    public Instant Now => Instant.FromUnixTimeTicks(Interlocked.Read(ref _ticks));

    public Instant GetCurrentInstant() => Now;

    public void Advance(Duration by) => Interlocked.Add(ref _ticks, by.BclCompatibleTicks);
}

/// <summary>Builds configuration text: <c>sqlite:source.db</c> → <c>sqlite:dest.db</c> with the given tables and blocks.</summary>
internal static class SyncYaml
{
    /// <param name="tables">Flow-style table entries, e.g. <c>{name: items, cdc_method: trigger}</c>.</param>
    /// <param name="blocks">Top-level blocks (<c>cdc:</c>, <c>state:</c>) written as they are.</param>
    public static string Config(IEnumerable<string> tables, int batchSize = 1000, int maxParallelTables = 4, string blocks = "") => $"""
        sync:
          source:
            connection: "sqlite:source.db"
            tables: [{string.Join(", ", tables)}]
          destination:
            connection: "sqlite:dest.db"
          batch_size: {batchSize}
          max_parallel_tables: {maxParallelTables}
        {blocks}
        """;

    public static string Config(string table, int batchSize = 1000, string blocks = "") => Config([table], batchSize, 4, blocks);
}
