using System.Text.Json;
using Spectre.Console;

namespace DeltaSync.Cli.Output;

/// <summary>Where output goes: rich tables and progress bars on a terminal, plain lines when redirected, JSON on request.</summary>
internal static class Terminal
{
    public static bool IsInteractive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    public static readonly JsonSerializerOptions Json = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void WriteJson(object value) => Console.Out.WriteLine(JsonSerializer.Serialize(value, Json));

    public static void Line(string text) => Console.Out.WriteLine(text);

    /// <summary>A table on a terminal; tab-free aligned plain text otherwise.</summary>
    public static void Table(string[] headers, IEnumerable<string[]> rows)
    {
        var list = rows.ToList();
        if (IsInteractive)
        {
            var table = new Table().RoundedBorder();
            foreach (var header in headers)
            {
                table.AddColumn(new TableColumn(Markup.Escape(header)));
            }

            foreach (var row in list)
            {
                table.AddRow(row.Select(c => new Markup(Markup.Escape(c))).ToArray());
            }

            AnsiConsole.Write(table);
            return;
        }

        var widths = headers.Select((h, i) => Math.Max(h.Length, list.Count == 0 ? 0 : list.Max(r => r[i].Length))).ToArray();
        Console.Out.WriteLine(string.Join("  ", headers.Select((h, i) => h.PadRight(widths[i]))).TrimEnd());
        foreach (var row in list)
        {
            Console.Out.WriteLine(string.Join("  ", row.Select((c, i) => c.PadRight(widths[i]))).TrimEnd());
        }
    }
}
