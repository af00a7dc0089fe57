using System.Globalization;
using System.Text;
using Xunit.Abstractions;

namespace DeltaSync.FaultInjection.Tests.Infrastructure;

/// <summary>
/// The suite's record of trials: one row per trial (scenario, seed, the fault as it landed, what recovery did, the
/// verdict). Rows go to the test output as they finish, and the whole table is appended to the file named by
/// <c>DELTASYNC_FAULT_TABLE</c> (scripts/test.sh prints it after the tests) when the test ends, pass or fail.
/// </summary>
internal sealed class FaultTable
{
    private static readonly string[] Headers = ["scenario", "trial", "seed", "fault", "recovery", "verdict"];
    private static readonly Lock FileGate = new();

    private readonly string _title;
    private readonly ITestOutputHelper _output;
    private readonly List<string[]> _rows = [];

    public FaultTable(string title, ITestOutputHelper output)
    {
        _title = title;
        _output = output;
        _output.WriteLine($"{title}: base seed {FaultSettings.BaseSeed} (DELTASYNC_FAULT_SEED), table file {FilePath}");
    }

    /// <summary><c>DELTASYNC_FAULT_TABLE</c>, or a file in the system's temp folder.</summary>
    public static string FilePath { get; } =
        Environment.GetEnvironmentVariable("DELTASYNC_FAULT_TABLE") is { Length: > 0 } path
            ? Path.GetFullPath(path)
            : Path.Combine(Path.GetTempPath(), "deltasync-fault-injection", "fault-table.txt");

    public int Count => _rows.Count;

    public void Add(string scenario, int trial, int seed, string fault, string recovery, string verdict)
    {
        var row = new[] { scenario, trial.ToString(CultureInfo.InvariantCulture), seed.ToString(CultureInfo.InvariantCulture), fault, recovery, verdict };
        _rows.Add(row);
        _output.WriteLine(string.Join(" | ", row));
    }

    /// <summary>Writes the table to the test output and appends it to <see cref="FilePath"/>.</summary>
    public void Publish()
    {
        var text = Render();
        _output.WriteLine(text);
        lock (FileGate)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(FilePath)!);
            File.AppendAllText(FilePath, text);
        }
    }

    private string Render()
    {
        var widths = Headers.Select((h, i) => Math.Min(90, _rows.Select(r => r[i].Length).Append(h.Length).Max())).ToArray();
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"\n## {_title} — {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss}Z, base seed {FaultSettings.BaseSeed}, {_rows.Count} trial(s)\n");
        AppendLine(text, Headers, widths);
        AppendLine(text, widths.Select(w => new string('-', w)).ToArray(), widths);
        foreach (var row in _rows)
        {
            AppendLine(text, row, widths);
        }

        return text.ToString();
    }

    private static void AppendLine(StringBuilder text, string[] cells, int[] widths)
    {
        text.Append('|');
        for (var i = 0; i < cells.Length; i++)
        {
            text.Append(' ').Append(cells[i].PadRight(widths[i])).Append(" |");
        }

        text.Append('\n');
    }
}
