using System.Globalization;
using System.Text;

namespace DeltaSync.Benchmarks;

/// <summary>One measured line: what ran, how many rows it moved, how long it took and how much memory it peaked at.</summary>
/// <param name="Case">What ran.</param>
/// <param name="TableRows">Rows in the source table.</param>
/// <param name="RowsWritten">Rows inserted or updated at the destination.</param>
/// <param name="Elapsed">Wall time.</param>
/// <param name="PeakRssBytes">Peak RSS of the process; null for in-process baselines.</param>
/// <param name="EngineSeconds">The sync's duration as its report gives it (the process minus start-up); null for baselines.</param>
/// <param name="Check">The correctness verdict.</param>
public sealed record BenchmarkResult(string Case, long TableRows, long RowsWritten, TimeSpan Elapsed, long? PeakRssBytes, double? EngineSeconds, string Check)
{
    public bool Passed => Check.StartsWith("ok", StringComparison.Ordinal);

    /// <summary>
    /// Several rounds of one case as one line: the median time (robust to a neighbour's burst of work on a shared
    /// machine), the largest peak RSS, and the first failed check if any round failed.
    /// </summary>
    public static BenchmarkResult Summarize(IReadOnlyList<BenchmarkResult> rounds)
    {
        ArgumentNullException.ThrowIfNull(rounds);
        var median = rounds.OrderBy(r => r.Elapsed).ElementAt(rounds.Count / 2);
        return median with
        {
            PeakRssBytes = rounds.Max(r => r.PeakRssBytes),
            Check = rounds.FirstOrDefault(r => !r.Passed)?.Check ?? median.Check,
        };
    }
}

/// <summary>Renders results as a Markdown table (readable in a terminal and pasteable into docs/benchmarks.md).</summary>
public static class ResultTable
{
    private static readonly string[] Header = ["Case", "Table rows", "Rows written", "Seconds", "Rows written/s", "Peak RSS (MB)", "In-engine s", "Check"];
    private static readonly bool[] Numeric = [false, true, true, true, true, true, true, false];

    public static string ToMarkdown(IEnumerable<BenchmarkResult> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        var lines = new List<string[]> { Header };
        lines.AddRange(results.Select(r => new[]
        {
            r.Case,
            r.TableRows.ToString("N0", CultureInfo.InvariantCulture),
            r.RowsWritten.ToString("N0", CultureInfo.InvariantCulture),
            r.Elapsed.TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture),
            r.RowsWritten == 0 ? "–" : (r.RowsWritten / r.Elapsed.TotalSeconds).ToString("N0", CultureInfo.InvariantCulture),
            r.PeakRssBytes is { } rss ? (rss / 1024.0 / 1024.0).ToString("0", CultureInfo.InvariantCulture) : "n/a (in-process)",
            r.EngineSeconds is { } engine ? engine.ToString("0.000", CultureInfo.InvariantCulture) : "–",
            r.Check,
        }));

        var widths = Enumerable.Range(0, lines[0].Length).Select(c => lines.Max(l => l[c].Length)).ToArray();
        var text = new StringBuilder();
        for (var i = 0; i < lines.Count; i++)
        {
            text.Append('|').AppendJoin('|', lines[i].Select((cell, c) => " " + (Numeric[c] ? cell.PadLeft(widths[c]) : cell.PadRight(widths[c])) + " ")).AppendLine("|");
            if (i == 0)
            {
                text.Append('|').AppendJoin('|', widths.Select((w, c) => Numeric[c] ? new string('-', w + 1) + ":" : new string('-', w + 2))).AppendLine("|");
            }
        }

        return text.ToString();
    }
}
