using System.Globalization;
using System.Text;

namespace DeltaSync.Benchmarks.Postgres;

/// <summary>
/// The PostgreSQL results as Markdown: anchors and DeltaSync runs with min and median times (initial loads also as a
/// multiple of each anchor's median), where DeltaSync's time went, and the targets with a plain verdict.
/// </summary>
public static class PgResultTable
{
    /// <summary>Initial load no slower than native logical replication's initial copy.</summary>
    public const double NativeTarget = 1.0;

    /// <summary>Initial load within this multiple of the binary COPY pipe.</summary>
    public const double CopyPipeTarget = 1.3;

    public static string ToMarkdown(IReadOnlyList<PgSummary> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        var pipe = results.FirstOrDefault(r => r.Kind == PgCaseKind.CopyPipeAnchor);
        var native = results.FirstOrDefault(r => r.Kind == PgCaseKind.NativeCopyAnchor);
        var text = new StringBuilder();
        Render(
            text,
            ["Case", "Rows written", "Min s", "Median s", "Rows/s (median)", "Peak RSS (MB)", "In-engine s", "× COPY pipe", "× native", "Check"],
            [false, true, true, true, true, true, true, true, true, false],
            results.Select(r => new[]
            {
                r.Case,
                Number(r.RowsWritten),
                Seconds(r.Min),
                Seconds(r.Median),
                r.RowsWritten == 0 ? "–" : Number((long)(r.RowsWritten / r.Median.TotalSeconds)),
                r.PeakRssBytes is { } rss ? (rss / 1048576.0).ToString("0", CultureInfo.InvariantCulture) : "in-process",
                r.EngineMedian is { } engine ? engine.ToString("0.000", CultureInfo.InvariantCulture) : "–",
                Ratio(r, pipe),
                Ratio(r, native),
                r.Check,
            }));

        var staged = results.Where(r => r.StageMedians is not null).ToList();
        if (staged.Count > 0)
        {
            text.AppendLine().AppendLine("Where DeltaSync's time went (medians of the engine's `-v` stage timings, seconds):").AppendLine();
            Render(
                text,
                ["Case", "In-engine", "Waiting for capture", "Ledger", "Destination", "State saves"],
                [false, true, true, true, true, true],
                staged.Select(r => new[]
                {
                    r.Case,
                    r.EngineMedian?.ToString("0.00", CultureInfo.InvariantCulture) ?? "–",
                    r.StageMedians!.CaptureWait.ToString("0.00", CultureInfo.InvariantCulture),
                    r.StageMedians.Ledger.ToString("0.00", CultureInfo.InvariantCulture),
                    r.StageMedians.Destination.ToString("0.00", CultureInfo.InvariantCulture),
                    r.StageMedians.StateSaves.ToString("0.00", CultureInfo.InvariantCulture),
                }));
        }

        text.AppendLine().AppendLine("Targets (initial load, median wall time of the whole `deltasync` process):").AppendLine();
        foreach (var load in results.Where(r => r.Kind == PgCaseKind.InitialLoad))
        {
            text.AppendLine(Verdict(load, native, NativeTarget, "native logical replication's initial copy"));
            text.AppendLine(Verdict(load, pipe, CopyPipeTarget, "the binary COPY pipe"));
        }

        return text.ToString();
    }

    private static string Verdict(PgSummary load, PgSummary? anchor, double target, string what)
    {
        if (anchor is null)
        {
            return $"- {load.Case}: ≤ {target:0.0#}× {what}: not measured";
        }

        var ratio = load.Median / anchor.Median;
        var engine = load.EngineMedian is { } seconds ? $"; in-engine {seconds / anchor.Median.TotalSeconds:0.00}×" : "";
        return $"- {load.Case}: ≤ {target:0.0#}× {what} ({anchor.Median.TotalSeconds:0.00} s): {load.Median.TotalSeconds:0.00} s = {ratio:0.00}×{engine}: " +
            (ratio <= target ? "**met**" : "**missed**");
    }

    private static string Ratio(PgSummary result, PgSummary? anchor) =>
        anchor is null || result.Kind is not (PgCaseKind.InitialLoad or PgCaseKind.CopyPipeAnchor or PgCaseKind.NativeCopyAnchor)
            ? "–"
            : (result.Median / anchor.Median).ToString("0.00", CultureInfo.InvariantCulture);

    private static string Number(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Seconds(TimeSpan value) => value.TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture);

    private static void Render(StringBuilder text, string[] header, bool[] numeric, IEnumerable<string[]> rows)
    {
        var lines = new List<string[]> { header };
        lines.AddRange(rows);
        var widths = Enumerable.Range(0, header.Length).Select(c => lines.Max(l => l[c].Length)).ToArray();
        for (var i = 0; i < lines.Count; i++)
        {
            text.Append('|').AppendJoin('|', lines[i].Select((cell, c) => " " + (numeric[c] ? cell.PadLeft(widths[c]) : cell.PadRight(widths[c])) + " ")).AppendLine("|");
            if (i == 0)
            {
                text.Append('|').AppendJoin('|', widths.Select((w, c) => numeric[c] ? new string('-', w + 1) + ":" : new string('-', w + 2))).AppendLine("|");
            }
        }
    }
}
