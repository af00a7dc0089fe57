using DeltaSync.Postgres.Tests;
using Microsoft.Data.Sqlite;

namespace DeltaSync.FaultInjection.Tests.Infrastructure;

/// <summary>
/// One sync's world for a trial: a temp folder with the config, a source workload, and a destination (a SQLite file in
/// the folder or a fresh PostgreSQL database). Compares the destination with the source and reads the checkpoint the
/// destination committed with its data.
/// </summary>
internal sealed class SyncEnvironment : IAsyncDisposable
{
    private SyncEnvironment(string folder, SourceWorkload source, PgDatabase? pgDestination)
    {
        Folder = folder;
        Source = source;
        PgDestination = pgDestination;
    }

    public string Folder { get; }

    public SourceWorkload Source { get; }

    /// <summary>The PostgreSQL destination; null for the SQLite file <see cref="SqliteDestinationPath"/>.</summary>
    public PgDatabase? PgDestination { get; }

    public string SqliteDestinationPath => Path.Combine(Folder, "dest.db");

    public string ConfigPath => Path.Combine(Folder, "sync.yaml");

    /// <summary>PostgreSQL → SQLite: values are compared in their portable forms.</summary>
    public bool CrossSystem => Source is PostgresWorkload && PgDestination is null;

    public string DestinationConnection => PgDestination?.Uri ?? "sqlite:///" + SqliteDestinationPath.TrimStart('/');

    public static SyncEnvironment WithSqliteSource(bool hardDeletes = true)
    {
        var folder = NewFolder();
        return new SyncEnvironment(folder, new SqliteWorkload(Path.Combine(folder, "source.db")) { HardDeletes = hardDeletes }, null);
    }

    public static async Task<SyncEnvironment> WithPostgresSourceAsync(bool hardDeletes, bool hasEvents, bool postgresDestination) =>
        new(NewFolder(), await PostgresWorkload.CreateDatabaseAsync(hardDeletes, hasEvents), postgresDestination ? await PgDatabase.CreateAsync("fault_dst") : null);

    /// <summary>A file under the environment's folder.</summary>
    public string PathOf(string name) => Path.Combine(Folder, name);

    /// <summary>
    /// Writes <c>sync.yaml</c>: the source's tables as given (flow-style entries), the destination, and extra top-level
    /// blocks (<c>cdc:</c>, <c>state:</c>) as written.
    /// </summary>
    public string WriteConfig(string tables, int batchSize, string blocks = "", string? destination = null)
    {
        File.WriteAllText(ConfigPath, $"""
            sync:
              name: fault
              source:
                connection: "{Source.Connection}"
                tables: [{tables}]
              destination:
                connection: "{destination ?? DestinationConnection}"
              batch_size: {batchSize}
            {blocks}
            """);
        return ConfigPath;
    }

    /// <summary>Null when the destination equals the source row for row (and <c>events</c> as a multiset); else what differs.</summary>
    public async Task<string?> CompareAsync()
    {
        var problems = new List<string>();
        var items = await ReadDestinationAsync($"SELECT {Source.ItemsColumns} FROM items ORDER BY 1");
        if (RowComparison.ByKey(await Source.ReadItemsAsync(CrossSystem), items, 1, "items") is { } itemsProblem)
        {
            problems.Add(itemsProblem);
        }

        if (Source.HasEvents)
        {
            var events = await ReadDestinationAsync($"SELECT {SourceWorkload.EventsColumns} FROM events");
            if (RowComparison.AsMultiset(await Source.ReadEventsAsync(CrossSystem), events, "events") is { } eventsProblem)
            {
                problems.Add(eventsProblem);
            }
        }

        return problems.Count == 0 ? null : string.Join('\n', problems);
    }

    /// <summary>Rows of <c>items</c> at the destination, for "nothing was written" checks.</summary>
    public Task<List<string[]>> DestinationItemsAsync() => ReadDestinationAsync($"SELECT {Source.ItemsColumns} FROM items ORDER BY 1");

    /// <summary>The newest checkpoint version the destination committed with its data (0 when none yet).</summary>
    public async Task<long> CommittedVersionAsync()
    {
        if (PgDestination is not null)
        {
            return await PgDestination.ScalarAsync<bool>("SELECT to_regclass('deltasync.committed_checkpoints') IS NOT NULL")
                ? await PgDestination.ScalarAsync<long>("SELECT coalesce(max(version), 0) FROM deltasync.committed_checkpoints")
                : 0;
        }

        if (!File.Exists(SqliteDestinationPath))
        {
            return 0;
        }

        await using var sqlite = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = SqliteDestinationPath, Pooling = false, DefaultTimeout = 30, Mode = SqliteOpenMode.ReadOnly }.ToString());
        await sqlite.OpenAsync();
        await using var exists = sqlite.CreateCommand();
        exists.CommandText = "SELECT count(*) FROM sqlite_schema WHERE name = '_deltasync_checkpoints'";
        if ((long)(await exists.ExecuteScalarAsync())! == 0)
        {
            return 0;
        }

        await using var version = sqlite.CreateCommand();
        version.CommandText = "SELECT coalesce(max(version), 0) FROM _deltasync_checkpoints";
        return (long)(await version.ExecuteScalarAsync())!;
    }

    /// <summary>
    /// How many runs the default state store (<c>sync.state.db</c> beside the config) recorded as finished: a run killed
    /// after it recorded itself had finished its work, and the next run has nothing to resume.
    /// </summary>
    public async Task<long> FinishedRunsAsync()
    {
        var path = PathOf("sync.state.db");
        if (!File.Exists(path))
        {
            return 0;
        }

        var rows = await SqliteWorkload.ReadAsync(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'runs'", crossSystem: false);
        return rows[0][0] == "i:0" ? 0 : long.Parse((await SqliteWorkload.ReadAsync(path, "SELECT count(*) FROM runs", crossSystem: false))[0][0][2..], System.Globalization.CultureInfo.InvariantCulture);
    }

    public async ValueTask DisposeAsync()
    {
        await Source.DisposeAsync();
        if (PgDestination is not null)
        {
            await PgDestination.DisposeAsync();
        }

        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
            // Something still holds a file (a killed run's leftovers are closed by now; a mount is unmounted first).
        }
    }

    private async Task<List<string[]>> ReadDestinationAsync(string sql) =>
        PgDestination is not null
            ? await PostgresWorkload.ReadAsync(PgDestination, sql, CrossSystem)
            : await SqliteWorkload.ReadAsync(SqliteDestinationPath, sql, CrossSystem);

    private static string NewFolder() => Directory.CreateTempSubdirectory("deltasync-fault-").FullName;
}
