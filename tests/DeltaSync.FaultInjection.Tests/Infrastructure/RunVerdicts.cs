using DeltaSync.Cli.Tests;

namespace DeltaSync.FaultInjection.Tests.Infrastructure;

/// <summary>What trials require of a run that met a fault: a clear failure, or a clean completion.</summary>
internal static class RunVerdicts
{
    /// <summary>True when either output carries .NET stack frames ("   at Namespace.Type.Method(…)").</summary>
    public static bool HasStackTrace(CliResult run) =>
        run.StandardError.Contains("   at ", StringComparison.Ordinal) || run.StandardOutput.Contains("   at ", StringComparison.Ordinal);

    /// <summary>
    /// Null when the run failed the way a user can act on: a non-zero exit code, no stack trace, no "unexpected"
    /// exception, an error line on the console mentioning each of <paramref name="mentions"/> (case-insensitive), and a
    /// report whose status is not <c>completed</c> and whose <c>errors</c> list the failure. Otherwise what is missing.
    /// </summary>
    public static string? ClearFailure(CliResult run, RunReport? report, params string[] mentions)
    {
        var console = run.StandardOutput + "\n" + run.StandardError;
        var problems = new List<string>();
        if (run.ExitCode == 0)
        {
            problems.Add("exit code 0 for a failed run");
        }

        if (HasStackTrace(run))
        {
            problems.Add("a stack trace was printed");
        }

        if (console.Contains("unexpected ", StringComparison.OrdinalIgnoreCase))
        {
            problems.Add("the error is reported as unexpected");
        }

        if (!console.Contains("error", StringComparison.OrdinalIgnoreCase))
        {
            problems.Add("no error line on the console");
        }

        foreach (var mention in mentions)
        {
            if (!console.Contains(mention, StringComparison.OrdinalIgnoreCase))
            {
                problems.Add($"the console output does not mention '{mention}'");
            }
        }

        if (report is null)
        {
            problems.Add("no report was written to --report FILE");
        }
        else
        {
            if (report.Status == "completed")
            {
                problems.Add("the report's status is completed");
            }

            if (report.Errors.Count == 0)
            {
                problems.Add("the report's errors are empty");
            }

            foreach (var mention in mentions)
            {
                if (!report.Errors.Any(e => e.Message.Contains(mention, StringComparison.OrdinalIgnoreCase) || e.Table.Contains(mention, StringComparison.OrdinalIgnoreCase)))
                {
                    problems.Add($"no error in the report mentions '{mention}'");
                }
            }
        }

        return problems.Count == 0 ? null : $"{string.Join("; ", problems)}\n{run}";
    }

    /// <summary>Null when the run completed (exit 0, report status completed, no stack trace); otherwise why not.</summary>
    public static string? Completed(CliResult run, RunReport? report) =>
        run.ExitCode != 0 ? $"exit {run.ExitCode}: {run}"
        : report is null ? "no report was written"
        : report.Status != "completed" ? $"report status: {report}"
        : HasStackTrace(run) ? "a stack trace was printed: " + run.StandardError
        : null;

    /// <summary>A short line for the fault table: exit code, status and counts.</summary>
    public static string Summary(CliResult run, RunReport? report) =>
        $"exit {run.ExitCode}" + (report is null ? ", no report" : $", {report.Status} +{report.Inserted} ~{report.Updated} -{report.Deleted}");

    /// <summary>The first error line the run printed, for the fault table.</summary>
    public static string FirstError(CliResult run) =>
        (run.StandardError + "\n" + run.StandardOutput).Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("error", StringComparison.OrdinalIgnoreCase)) is { } line
            ? (line.Length > 160 ? line[..160] + "…" : line)
            : "(no error line)";
}
