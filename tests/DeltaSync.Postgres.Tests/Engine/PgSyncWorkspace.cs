using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.Reporting;
using DeltaSync.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using NodaTime;

namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>
/// A sync between two fresh PostgreSQL databases (or one and a SQLite file) with its config folder, state beside the
/// config. Runs the real engine with both connectors on configs parsed as if read from that folder.
/// </summary>
internal sealed class PgSyncWorkspace : IAsyncDisposable
{
    public const string SyncName = "sync";
    private int _runs;

    private PgSyncWorkspace(PgDatabase source, PgDatabase destination)
    {
        Source = source;
        Destination = destination;
        Folder = Path.Combine(Path.GetTempPath(), "deltasync-tests", "pg-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Folder);
    }

    public static async Task<PgSyncWorkspace> CreateAsync() =>
        new(await PgDatabase.CreateAsync("src"), await PgDatabase.CreateAsync("dst"));

    public PgDatabase Source { get; }

    public PgDatabase Destination { get; }

    public string Folder { get; }

    public string ConfigPath => Path.Combine(Folder, SyncName + ".yaml");

    public string SqlitePath(string name) => Path.Combine(Folder, name);

    public SyncConfig Configure(string yaml) => ConfigLoader.Parse(yaml, ConfigPath, _ => null);

    /// <summary>A config from <see cref="Source"/> to <paramref name="destination"/> (the destination database by default).</summary>
    public SyncConfig Config(string tables, string? destination = null, string? source = null, int batchSize = 1000, string blocks = "") => Configure($"""
        sync:
          source:
            connection: "{source ?? Source.Uri}"
            tables: [{tables}]
          destination:
            connection: "{destination ?? Destination.Uri}"
          batch_size: {batchSize}
        {blocks}
        """);

    /// <summary>
    /// Two sources writing <paramref name="table"/> under last-write-wins: <see cref="Source"/> as
    /// <paramref name="first"/> (named "source" like a single-source config's) and <paramref name="shop"/> as "shop".
    /// </summary>
    public SyncConfig TwoSources(PgDatabase shop, string table, string first = "source") => Configure($$"""
        sync:
          sources:
            - {name: {{first}}, connection: "{{Source.Uri}}", tables: [{{table}}]}
            - {name: shop, connection: "{{shop.Uri}}", tables: [{{table}}]}
          destination: {connection: "{{Destination.Uri}}"}
        conflict_resolution: {default_strategy: last_write_wins}
        """);

    public async Task<SyncReport> RunAsync(SyncConfig config, bool fullRefresh = false, bool reconcile = false)
    {
        var clock = SystemClock.Instance;
        var engine = new SyncEngine(config, new ConnectorRegistry().Add(new SqliteConnector(clock)).Add(new PostgresConnector(clock)), clock, NullLogger.Instance);
        var reportPath = Path.Combine(Folder, "reports", $"run-{Interlocked.Increment(ref _runs):D3}.json");
        var outcome = await engine.RunOnceAsync(new RunOptions([], fullRefresh, reportPath) { Reconcile = reconcile }, null, CancellationToken.None);
        return outcome.Report;
    }

    public async Task<SyncReport> RunCompletedAsync(SyncConfig config, bool fullRefresh = false, bool reconcile = false)
    {
        var report = await RunAsync(config, fullRefresh, reconcile);
        Assert.True(report.Metadata.Status == "completed", $"run status {report.Metadata.Status}: {Describe(report)}");
        return report;
    }

    /// <summary>The same rows in both PostgreSQL databases for a query (run on each side).</summary>
    public async Task AssertSameAsync(string query)
    {
        var source = await Source.RowsAsync(query);
        var destination = await Destination.RowsAsync(query);
        AssertSameRows(source, destination, query);
    }

    public static void AssertSameRows(IReadOnlyList<string> source, IReadOnlyList<string> destination, string what)
    {
        if (source.SequenceEqual(destination))
        {
            return;
        }

        var onlySource = source.Except(destination).Take(5).Select(r => "  source only: " + r);
        var onlyDestination = destination.Except(source).Take(5).Select(r => "  destination only: " + r);
        Assert.Fail($"'{what}' differs: source has {source.Count} rows, destination {destination.Count}\n{string.Join("\n", onlySource.Concat(onlyDestination))}");
    }

    public static long Writes(SyncReport report) =>
        report.Statistics.RecordsInserted + report.Statistics.RecordsUpdated + report.Statistics.RecordsDeleted;

    public static string Describe(SyncReport report) =>
        $"inserted {report.Statistics.RecordsInserted}, updated {report.Statistics.RecordsUpdated}, deleted {report.Statistics.RecordsDeleted}; " +
        $"errors: [{string.Join("; ", report.Errors.Select(e => e.Message))}]; tables: [{string.Join("; ", report.Tables.Select(t => $"{t.Table} {t.Status} {t.Error}"))}]";

    public async ValueTask DisposeAsync()
    {
        await Source.DisposeAsync();
        await Destination.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
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
