using System.Collections.Concurrent;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Pipeline;
using Spectre.Console;

namespace DeltaSync.Cli.Output;

/// <summary>
/// Shows table progress: a live Spectre progress display on a terminal, one plain line per table and phase otherwise
/// (batch-level lines would flood logs of large syncs). With several sources a table name can be read by more than one
/// source, so each stream is shown as <c>table (source)</c>.
/// </summary>
internal sealed class RunProgress : IProgress<TableProgress>
{
    private readonly ConcurrentDictionary<string, TableProgress> _latest = new();
    private readonly ConcurrentDictionary<string, string> _announced = new();
    private readonly bool _quiet;
    private readonly bool _multiSource;

    public RunProgress(bool quiet, bool multiSource = false)
    {
        _quiet = quiet;
        _multiSource = multiSource;
    }

    public void Report(TableProgress value)
    {
        var label = TablePlan.Label(value.Table, _multiSource ? value.Source : null);
        _latest[label] = value;
        if (_quiet || Terminal.IsInteractive)
        {
            return;
        }

        var key = value.Done ? "done" : value.Phase;
        if (_announced.TryGetValue(label, out var last) && last == key)
        {
            return;
        }

        _announced[label] = key;
        Console.Out.WriteLine(value.Done
            ? $"{label}: done — {value.RecordsProcessed} processed, {value.Inserted} inserted, {value.Updated} updated, {value.Deleted} deleted, {value.Unchanged} unchanged"
            : $"{label}: {value.Phase}…");
    }

    /// <summary>Runs <paramref name="work"/> under a live display when interactive.</summary>
    public async Task<T> ShowAsync<T>(IReadOnlyList<string> tables, Func<Task<T>> work)
    {
        if (_quiet || !Terminal.IsInteractive)
        {
            return await work().ConfigureAwait(false);
        }

        T result = default!;
        await AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new SpinnerColumn(), new ElapsedTimeColumn())
            .StartAsync(async context =>
            {
                var rows = tables.ToDictionary(t => t, t => context.AddTask(Markup.Escape(t), maxValue: 1));
                var running = work();
                while (!running.IsCompleted)
                {
                    Refresh(rows);
                    await Task.WhenAny(running, Task.Delay(200)).ConfigureAwait(false);
                }

                Refresh(rows);
                result = await running.ConfigureAwait(false);
            }).ConfigureAwait(false);
        return result;
    }

    private void Refresh(Dictionary<string, ProgressTask> rows)
    {
        foreach (var (table, task) in rows)
        {
            if (!_latest.TryGetValue(table, out var p))
            {
                continue;
            }

            task.Description = Markup.Escape($"{table} [{p.Phase}] {p.RecordsProcessed:N0} read · +{p.Inserted:N0} ~{p.Updated:N0} -{p.Deleted:N0}");
            if (p.Done)
            {
                task.Value = 1;
                task.StopTask();
            }
        }
    }
}
