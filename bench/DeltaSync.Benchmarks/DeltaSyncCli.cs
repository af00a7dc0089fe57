using System.Text.Json;

namespace DeltaSync.Benchmarks;

/// <summary>The counts a run's report gives under <c>statistics</c>.</summary>
/// <param name="EngineSeconds">The report's own duration: the run inside the process, without start-up and shut-down.</param>
public sealed record ReportStatistics(string Status, double EngineSeconds, long Processed, long Inserted, long Updated, long Deleted, long Unchanged)
{
    public long Written => Inserted + Updated + Deleted;

    public static ReportStatistics Read(string reportPath)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(reportPath));
        var root = document.RootElement;
        var metadata = root.GetProperty("metadata");
        var statistics = root.GetProperty("statistics");
        long Count(string name) => statistics.TryGetProperty(name, out var value) ? value.GetInt64() : 0;
        return new ReportStatistics(
            metadata.GetProperty("status").GetString() ?? "?",
            metadata.GetProperty("duration_seconds").GetDouble(),
            Count("records_processed"),
            Count("records_inserted"),
            Count("records_updated"),
            Count("records_deleted"),
            Count("records_unchanged"));
    }

    public override string ToString() =>
        $"{Status} in {EngineSeconds:0.000} s: processed {Processed:N0}, inserted {Inserted:N0}, updated {Updated:N0}, deleted {Deleted:N0}, unchanged {Unchanged:N0}";
}

/// <summary>The <c>deltasync</c> command, run as its own process exactly as a user would run it.</summary>
/// <param name="program">The executable started: the published app host, or <c>dotnet</c> for an assembly.</param>
/// <param name="assemblyPath">The <c>deltasync.dll</c> that <c>dotnet</c> runs, or null for an app host.</param>
public sealed class DeltaSyncCli(string program, string? assemblyPath)
{
    public const int BatchSize = 10_000;

    /// <summary>The executable each run starts.</summary>
    public string Program { get; } = program;

    /// <summary>How the CLI is started, for the output.</summary>
    public string Description => assemblyPath is null ? Program : $"dotnet {assemblyPath}";

    /// <summary>
    /// A CLI that is already built: a <c>deltasync.dll</c> (run with <c>dotnet</c>) or a published executable.
    /// </summary>
    public static DeltaSyncCli At(string path)
    {
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"--cli: {path} does not exist");
        }

        return path.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) ? new DeltaSyncCli("dotnet", path) : new DeltaSyncCli(path, null);
    }

    /// <summary>The arguments of one invocation: <paramref name="arguments"/>, after the assembly when run by <c>dotnet</c>.</summary>
    public IReadOnlyList<string> Arguments(params string[] arguments) => assemblyPath is null ? arguments : [assemblyPath, .. arguments];

    /// <summary>
    /// Builds <c>src/DeltaSync.Cli</c> (not timed) and returns the CLI at its output: published for this machine's
    /// platform as <c>dotnet pack</c> builds the tool package users install (self-contained, one composite ReadyToRun
    /// image of the runtime and the app); with <paramref name="jit"/> the plain <c>dotnet build -c Release</c> output
    /// instead.
    /// </summary>
    public static async Task<DeltaSyncCli> BuildAsync(string repositoryRoot, bool jit = false)
    {
        var project = Path.Combine(repositoryRoot, "src", "DeltaSync.Cli");
        string[] arguments;
        string program;
        if (jit)
        {
            arguments = ["build", "-c", "Release", project, "-nologo", "-v", "quiet"];
            program = Path.Combine(project, "bin", "Release", "net10.0", "deltasync.dll");
        }
        else
        {
            var rid = System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier;
            var output = Path.Combine(repositoryRoot, "bench", "data", "cli-" + rid);
            try
            {
                if (Directory.Exists(output))
                {
                    // A framework-dependent publish left here by an older benchmark would mix with this one.
                    Directory.Delete(output, recursive: true);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new InvalidOperationException($"cannot replace the CLI in {output} (is a benchmark still running it?): {e.Message}; pass --cli PATH to use another build", e);
            }

            arguments = ["publish", "-c", "Release", project, "-r", rid, "--self-contained", "true", "-p:PublishReadyToRun=true", "-p:PublishReadyToRunComposite=true", "-o", output, "-nologo", "-v", "quiet"];
            program = Path.Combine(output, OperatingSystem.IsWindows() ? "deltasync.exe" : "deltasync");
        }

        var build = await ProcessMeasurement.RunAsync("dotnet", arguments, repositoryRoot).ConfigureAwait(false);
        if (build.ExitCode != 0 || !File.Exists(program))
        {
            throw new InvalidOperationException($"{build.Output}\nbuilding {project} failed (exit {build.ExitCode}); pass --cli PATH/deltasync.dll to use another build");
        }

        return At(program);
    }

    /// <summary>Writes the configuration of a run in <paramref name="folder"/>: source.db → destination.db, state beside it.</summary>
    public static string WriteConfig(string folder)
    {
        var path = Path.Combine(folder, "deltasync.yaml");
        File.WriteAllText(path, $$"""
            sync:
              source: {connection: "sqlite:source.db", tables: [{{ItemsDatabase.Table}}]}
              destination: {connection: "sqlite:destination.db"}
              cdc_method: timestamp
              batch_size: {{BatchSize}}
            cdc:
              timestamp: {updated_at_field: updated_at, tolerance_window: "5 minutes"}

            """);
        return path;
    }

    /// <summary>Starts the runtime once so the timed runs find the CLI's files in the page cache.</summary>
    public Task WarmUpAsync(string folder) => ProcessMeasurement.RunAsync(Program, Arguments("--help"), folder);

    /// <summary><c>deltasync run --config … --report …</c>, timed as a whole process.</summary>
    public async Task<(ProcessMeasurement Process, ReportStatistics? Statistics)> RunAsync(string configPath, string reportPath)
    {
        File.Delete(reportPath);
        var measurement = await ProcessMeasurement.RunAsync(
            Program,
            Arguments("run", "--config", configPath, "--report", reportPath),
            Path.GetDirectoryName(configPath)!).ConfigureAwait(false);
        var statistics = File.Exists(reportPath) ? ReportStatistics.Read(reportPath) : null;
        return (measurement, statistics);
    }
}
