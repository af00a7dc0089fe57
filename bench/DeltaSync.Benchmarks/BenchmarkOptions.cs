using System.Globalization;

namespace DeltaSync.Benchmarks;

/// <summary>The command line of the benchmark.</summary>
/// <param name="Rows">Rows in the generated source table.</param>
/// <param name="ChangedPercent">Share of rows changed before the incremental run.</param>
/// <param name="WorkDirectory">Where databases, configs and reports go (wiped per size).</param>
/// <param name="ScaleCheck">Also run the full sync at 5× rows to show that memory does not grow with the table.</param>
/// <param name="CliPath">A built CLI: a <c>deltasync.dll</c> (run with <c>dotnet</c>) or a published <c>deltasync</c> executable; when null the CLI is published from the repository.</param>
/// <param name="Rounds">How often to repeat the baselines and runs (a)–(c); the table shows the median (default 1; 2 with --postgres).</param>
/// <param name="PostgresUri">
/// A <c>postgresql://</c> server on which the benchmark may create and drop databases: runs the PostgreSQL benchmark
/// (<see cref="Postgres.PostgresBenchmark"/>) instead of the SQLite one.
/// </param>
/// <param name="PostgresStream">
/// With <c>--postgres</c>: the WAL streaming benchmark (<see cref="Postgres.PgStreamBenchmark"/>: catch-up and lag,
/// native logical replication beside DeltaSync <c>run --follow</c>) instead of the initial-load one; 100,000 rows and 1 round unless given.
/// </param>
public sealed record BenchmarkOptions(int Rows, double ChangedPercent, string WorkDirectory, bool ScaleCheck, string? CliPath, int Rounds, string? PostgresUri = null, bool PostgresStream = false)
{
    /// <summary><c>--reconcile</c>: the key-range reconciliation benchmark (SQLite) instead of the sync benchmark.</summary>
    public bool Reconcile { get; init; }

    /// <summary>
    /// <c>--jit</c>: time the plain Release build (<c>dotnet build</c>, compiled just in time) instead of the ReadyToRun
    /// publish that the tool package ships.
    /// </summary>
    public bool Jit { get; init; }

    /// <summary><c>--conflicts</c>: the cost of conflict detection (<see cref="ConflictScenario"/>), 100,000 rows unless given.</summary>
    public bool Conflicts { get; init; }

    public const string Usage =
        "usage: dotnet run -c Release --project bench/DeltaSync.Benchmarks -- [--rows 1000000] [--changed-percent 1] [--work DIR] [--scale-check] [--rounds 1] [--cli PATH/deltasync[.dll] | --jit] [--postgres postgresql://user:pass@host:port/db [--postgres-stream]] [--reconcile] [--conflicts]";

    public const int ScaleFactor = 5;

    /// <summary>Rows changed before the incremental run (at least one).</summary>
    public int ChangedRows => Math.Max(1, (int)Math.Round(Rows * ChangedPercent / 100));

    public static BenchmarkOptions Parse(IReadOnlyList<string> args, string repositoryRoot)
    {
        ArgumentNullException.ThrowIfNull(args);
        var options = new BenchmarkOptions(1_000_000, 1, Path.Combine(repositoryRoot, "bench", "data"), false, null, 1);
        for (var i = 0; i < args.Count; i++)
        {
            options = args[i] switch
            {
                "--rows" => options with { Rows = int.Parse(Value(args, ++i), NumberStyles.AllowThousands, CultureInfo.InvariantCulture) },
                "--changed-percent" => options with { ChangedPercent = double.Parse(Value(args, ++i), CultureInfo.InvariantCulture) },
                "--work" => options with { WorkDirectory = Path.GetFullPath(Value(args, ++i)) },
                "--scale-check" => options with { ScaleCheck = true },
                "--rounds" => options with { Rounds = int.Parse(Value(args, ++i), CultureInfo.InvariantCulture) },
                "--cli" => options with { CliPath = Path.GetFullPath(Value(args, ++i)) },
                "--postgres" => options with { PostgresUri = Value(args, ++i) },
                "--postgres-stream" => options with { PostgresStream = true },
                "--reconcile" => options with { Reconcile = true },
                "--conflicts" => options with { Conflicts = true },
                "--jit" => options with { Jit = true },
                _ => throw new ArgumentException($"unknown argument '{args[i]}'\n{Usage}"),
            };
        }

        if (options.Rows < 1 || options.Rounds < 1 || options.ChangedPercent is <= 0 or > 100)
        {
            throw new ArgumentException($"--rows and --rounds must be ≥ 1 and --changed-percent in (0, 100]\n{Usage}");
        }

        if (options.PostgresUri is not null && options.ScaleCheck)
        {
            throw new ArgumentException($"--scale-check applies to the SQLite benchmark only, not with --postgres\n{Usage}");
        }

        if (options.PostgresStream && options.PostgresUri is null)
        {
            throw new ArgumentException($"--postgres-stream needs --postgres URI\n{Usage}");
        }

        if (options.Conflicts && !args.Contains("--rows"))
        {
            options = options with { Rows = 100_000 };
        }

        // The streaming benchmark's (b) updates 100-row ranges over the whole table: 100,000 rows are 1,000 transactions.
        if (options.PostgresStream)
        {
            return options with
            {
                Rows = args.Contains("--rows") ? options.Rows : 100_000,
                Rounds = args.Contains("--rounds") ? options.Rounds : 1,
            };
        }

        // The PostgreSQL table gives min and median: one round would show the same number twice.
        if (options.PostgresUri is not null && !args.Contains("--rounds"))
        {
            options = options with { Rounds = 2 };
        }

        return options;
    }

    private static string Value(IReadOnlyList<string> args, int index) =>
        index < args.Count ? args[index] : throw new ArgumentException($"{args[index - 1]} needs a value\n{Usage}");
}
