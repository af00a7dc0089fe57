using System.Globalization;

namespace DeltaSync.Benchmarks;

/// <summary>The command line of the benchmark.</summary>
/// <param name="Rows">Rows in the generated source table.</param>
/// <param name="ChangedPercent">Share of rows changed before the incremental run.</param>
/// <param name="WorkDirectory">Where databases, configs and reports go (wiped per size).</param>
/// <param name="ScaleCheck">Also run the full sync at 5× rows to show that memory does not grow with the table.</param>
/// <param name="CliPath">A built <c>deltasync.dll</c>; when null the CLI is built in Release from the repository.</param>
/// <param name="Rounds">How often to repeat the baselines and runs (a)–(c); the table shows the median.</param>
public sealed record BenchmarkOptions(int Rows, double ChangedPercent, string WorkDirectory, bool ScaleCheck, string? CliPath, int Rounds)
{
    public const string Usage =
        "usage: dotnet run -c Release --project bench/DeltaSync.Benchmarks -- [--rows 1000000] [--changed-percent 1] [--work DIR] [--scale-check] [--rounds 1] [--cli PATH/deltasync.dll]";

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
                _ => throw new ArgumentException($"unknown argument '{args[i]}'\n{Usage}"),
            };
        }

        if (options.Rows < 1 || options.Rounds < 1 || options.ChangedPercent is <= 0 or > 100)
        {
            throw new ArgumentException($"--rows and --rounds must be ≥ 1 and --changed-percent in (0, 100]\n{Usage}");
        }

        return options;
    }

    private static string Value(IReadOnlyList<string> args, int index) =>
        index < args.Count ? args[index] : throw new ArgumentException($"{args[index - 1]} needs a value\n{Usage}");
}
