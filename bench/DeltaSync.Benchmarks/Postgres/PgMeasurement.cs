using System.Globalization;
using System.Text.RegularExpressions;

namespace DeltaSync.Benchmarks.Postgres;

/// <summary>What a measured case is, which decides what it is compared with.</summary>
public enum PgCaseKind
{
    CopyPipeAnchor,
    NativeCopyAnchor,
    InitialLoad,
    NoChange,
    Changed,
}

/// <summary>
/// Where one table's run spent its time, from the engine's own log line (<c>deltasync run -v</c>): waiting for the
/// capture, resolving against the ledger, applying at the destination, saving state. The apply stage runs while the
/// capture reads ahead, so the parts need not add up to the run.
/// </summary>
public sealed partial record StageTimings(double CaptureWait, double Ledger, double Destination, double StateSaves)
{
    public static StageTimings? Parse(string log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var match = TimingsLine().Match(log);
        if (!match.Success)
        {
            return null;
        }

        double At(int group) => double.Parse(match.Groups[group].Value, CultureInfo.InvariantCulture);
        return new StageTimings(At(1), At(2), At(3), At(4));
    }

    public override string ToString() =>
        $"waiting for capture {CaptureWait:0.00} s, ledger {Ledger:0.00} s, destination {Destination:0.00} s, state saves {StateSaves:0.00} s";

    [GeneratedRegex(@"time waiting for capture ([0-9.]+)s, ledger ([0-9.]+)s, destination ([0-9.]+)s, state saves ([0-9.]+)s")]
    private static partial Regex TimingsLine();
}

/// <summary>One round of one case.</summary>
/// <param name="Case">What ran.</param>
/// <param name="Kind">What it is compared with.</param>
/// <param name="RowsWritten">Rows written at the destination.</param>
/// <param name="Elapsed">Wall time: in-process for the anchors, the whole <c>deltasync</c> process for DeltaSync.</param>
/// <param name="PeakRssBytes">Peak RSS of the <c>deltasync</c> process; null for the in-process anchors.</param>
/// <param name="EngineSeconds">The report's own duration (the process minus start-up and shut-down); null for anchors.</param>
/// <param name="Stages">The engine's stage timings; null for anchors.</param>
/// <param name="Check">The correctness verdict.</param>
public sealed record PgMeasurement(
    string Case, PgCaseKind Kind, long RowsWritten, TimeSpan Elapsed, long? PeakRssBytes, double? EngineSeconds, StageTimings? Stages, string Check)
{
    public bool Passed => Check.StartsWith("ok", StringComparison.Ordinal);
}

/// <summary>All rounds of one case: fastest and median time, largest peak RSS, medians of the engine's figures.</summary>
public sealed record PgSummary(
    string Case, PgCaseKind Kind, long RowsWritten, int Rounds, TimeSpan Min, TimeSpan Median, long? PeakRssBytes, double? EngineMedian, StageTimings? StageMedians, string Check)
{
    public bool Passed => Check.StartsWith("ok", StringComparison.Ordinal);

    public static PgSummary Summarize(IReadOnlyList<PgMeasurement> rounds)
    {
        ArgumentNullException.ThrowIfNull(rounds);
        var first = rounds[0];
        var stages = rounds.Select(r => r.Stages).OfType<StageTimings>().ToList();
        var engine = rounds.Select(r => r.EngineSeconds).OfType<double>().ToList();
        return new PgSummary(
            first.Case,
            first.Kind,
            (long)Math.Round(MiddleOf(rounds.Select(r => (double)r.RowsWritten).ToList())),
            rounds.Count,
            rounds.Min(r => r.Elapsed),
            TimeSpan.FromSeconds(MiddleOf(rounds.Select(r => r.Elapsed.TotalSeconds).ToList())),
            rounds.Max(r => r.PeakRssBytes),
            engine.Count == 0 ? null : MiddleOf(engine),
            stages.Count == 0
                ? null
                : new StageTimings(
                    MiddleOf(stages.Select(s => s.CaptureWait).ToList()),
                    MiddleOf(stages.Select(s => s.Ledger).ToList()),
                    MiddleOf(stages.Select(s => s.Destination).ToList()),
                    MiddleOf(stages.Select(s => s.StateSaves).ToList())),
            rounds.FirstOrDefault(r => !r.Passed)?.Check ?? first.Check);
    }

    /// <summary>The middle value; with an even count, the mean of the two middle values.</summary>
    private static double MiddleOf(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToList();
        var middle = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }
}
