using System.Globalization;
using DeltaSync.Cli.Commands;
using DeltaSync.Cli.Output;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using NodaTime;
using Spectre.Console;

namespace DeltaSync.Cli.Demo;

/// <summary>
/// <c>deltasync demo</c>: builds a sample shop, syncs it in full, changes it like its application would, syncs again
/// and then checks the engine's work: run 2's report must show exactly the changes made, and the destination must
/// equal the source row for row, except the rows the engine rightly put in the dead-letter queue.
/// </summary>
internal static class DemoRunner
{
    public const int MinCustomers = 100;
    public const int MaxCustomers = 1_000_000;

    public static async Task<int> RunAsync(DemoSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.Customers is < MinCustomers or > MaxCustomers)
        {
            throw new UsageException($"--customers must be between {MinCustomers} and {MaxCustomers:N0}, got {settings.Customers}");
        }

        var folder = Path.GetFullPath(string.IsNullOrWhiteSpace(settings.Directory) ? "deltasync-demo" : settings.Directory);
        var sourcePath = Path.Combine(folder, DemoConfigFile.SourceFile);
        var destinationPath = Path.Combine(folder, DemoConfigFile.DestinationFile);

        Heading("A sample shop");
        var recreated = DemoFolder.Prepare(folder);
        var facts = DemoShop.Create(sourcePath, settings.Customers, SystemClock.Instance.GetCurrentInstant());
        var configPath = DemoConfigFile.Write(folder);
        Terminal.Line($"{(recreated ? "Recreated" : "Created")} {folder}");
        Terminal.Line($"  {DemoConfigFile.SourceFile}   {N(facts.Customers)} customers, {N(facts.Orders)} orders, {N(facts.Products)} products, with the usual mess:");
        Terminal.Line($"               {N(facts.SoftDeletedCustomers)} soft-deleted customers, {N(facts.CustomersWithoutUpdatedAt)} customers and {N(facts.OrdersWithoutUpdatedAt)} orders with NULL updated_at,");
        Terminal.Line($"               {N(facts.CustomersSharingImportTimestamp)} customers sharing one updated_at (an import), {N(facts.OrdersSharingNightlyTimestamps)} orders stamped by a nightly job,");
        Terminal.Line($"               and updated_at = '{DemoShop.UnreadableTimestamp}' on {Keys(facts.UnreadableKeys)}");
        Terminal.Line($"  {DemoConfigFile.FileName}  customers and orders by timestamp, products by trigger; batch_size 500");

        var config = CliHost.LoadConfig(configPath);
        using var logging = CliHost.Logging(verbose: false);
        var engine = new SyncEngine(config, CliHost.Connectors(), SystemClock.Instance, logging.CreateLogger("DeltaSync"));

        Heading("Run 1: full sync");
        var first = await SyncAsync(engine, cancellationToken).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        var firstExpected = ExpectedCounts.FullSync(facts);
        var firstOk = firstExpected.All(e => e.IsMetBy(first.Report));
        Terminal.Line(firstOk ? "Run 1 copied every readable row:" : "Run 1 did not copy what was expected:");
        foreach (var expected in firstExpected)
        {
            Terminal.Line("  " + expected.Describe(first.Report));
        }

        Heading("The shop changes");
        var changes = ShopTraffic.Apply(sourcePath, facts, SystemClock.Instance.GetCurrentInstant());
        Terminal.Line("Changed source.db the way the shop application would (updated_at = now on every changed row):");
        Terminal.Table(
            ["table", "changes", "run 2 should write"],
            changes.Select(c => new[] { c.Table, c.Description, $"{N(c.Inserted)} inserted, {N(c.Updated)} updated, {N(c.Deleted)} deleted" }));

        Heading("Run 2: incremental sync");
        var second = await SyncAsync(engine, cancellationToken).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();

        Heading("What the runs did");
        var secondExpected = ExpectedCounts.Incremental(changes);
        var secondOk = secondExpected.All(e => e.IsMetBy(second.Report));
        Terminal.Line(secondOk ? "Run 2 moved only what changed:" : "Run 2 did not move exactly what changed:");
        foreach (var expected in secondExpected)
        {
            Terminal.Line("  " + expected.Describe(second.Report));
        }

        var rechecked = second.Report.Tables.Where(t => t.RecordsUnchanged > 0).Select(t => $"{t.Table} {N(t.RecordsUnchanged)}").ToList();
        if (rechecked.Count > 0)
        {
            Terminal.Line($"  Re-read but unchanged, so not rewritten: {string.Join(", ", rechecked)} (rows with NULL updated_at are compared by row hash on every run).");
        }

        var deadLettersOk = await ReportDeadLettersAsync(config, facts, cancellationToken).ConfigureAwait(false);
        var matchesOk = ReportComparison(sourcePath, destinationPath, facts);

        var passed = firstOk && secondOk && deadLettersOk && matchesOk;
        Terminal.Line("");
        Terminal.Line(passed
            ? $"Both runs behaved as expected. Run 1 ended '{first.Report.Metadata.Status}' because it dead-lettered the {N(facts.UnreadableKeys.Values.Sum(k => k.Count))} rows with an unreadable updated_at; run 2 ended '{second.Report.Metadata.Status}' (those rows wait unchanged in the queue and are noted, not re-queued)."
            : "The engine did not behave as expected: see the lines marked above.");

        PrintNextSteps(folder, configPath, first.ReportPath, second.ReportPath);
        return passed ? ExitCodes.Completed : ExitCodes.Failed;
    }

    private static async Task<RunOutcome> SyncAsync(SyncEngine engine, CancellationToken cancellationToken)
    {
        var options = new RunOptions([], FullRefresh: false, ReportPath: null);
        var tables = engine.SelectTables([]).Select(p => p.Table).ToList();
        var progress = new RunProgress(quiet: false);
        var outcome = await progress.ShowAsync(tables, () => engine.RunOnceAsync(options, progress, cancellationToken)).ConfigureAwait(false);
        ReportSummary.Print(outcome.Report, outcome.ReportPath);
        return outcome;
    }

    /// <summary>Lists the dead-letter queue; true when it holds exactly the rows planted with a garbage <c>updated_at</c>.</summary>
    private static async Task<bool> ReportDeadLettersAsync(Core.Config.SyncConfig config, ShopFacts facts, CancellationToken cancellationToken)
    {
        IReadOnlyList<DeadLetter> letters;
        string where;
        var store = await StateStores.OpenAsync(config, CliHost.Connectors(), cancellationToken).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
        {
            letters = await store.ReadDeadLettersAsync(null, 1000, cancellationToken).ConfigureAwait(false);
            where = store.Description;
        }

        Terminal.Line($"Dead-letter queue ({where}):");
        foreach (var letter in letters)
        {
            Terminal.Line($"  {letter.Table} {letter.RecordId}: {letter.Reason} (seen {letter.Attempts}×)");
        }

        var ok = DemoShop.Tables.All(t =>
            letters.Where(l => string.Equals(l.Table, t.Name, StringComparison.OrdinalIgnoreCase)).Select(l => l.RecordId).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)
                .SequenceEqual(facts.UnreadableIn(t.Name).Order(StringComparer.Ordinal)));
        Terminal.Line(ok
            ? "  As planted: these rows stay out of the warehouse until their updated_at is fixed; the next run then syncs them."
            : $"  Expected exactly {Keys(facts.UnreadableKeys)} here  <-- differs");
        return ok;
    }

    /// <summary>Compares every table of the warehouse with the shop; true when they match apart from dead letters.</summary>
    private static bool ReportComparison(string sourcePath, string destinationPath, ShopFacts facts)
    {
        var comparisons = DemoShop.Tables
            .Select(t => ReplicaComparison.Compare(sourcePath, destinationPath, t, facts.UnreadableIn(t.Name).ToHashSet(StringComparer.Ordinal)))
            .ToList();
        var described = string.Join(", ", comparisons.Select(c =>
            $"{c.Table} {N(c.DestinationRows)}" + (c.DeadLetteredMissing.Count == 0 ? "" : $" of {N(c.SourceRows)}, without {string.Join(", ", c.DeadLetteredMissing)}")));
        if (comparisons.All(c => c.Matches))
        {
            Terminal.Line($"Row-for-row check of {DemoConfigFile.DestinationFile} against {DemoConfigFile.SourceFile}: destination matches source ({described}).");
            return true;
        }

        Terminal.Line($"Row-for-row check of {DemoConfigFile.DestinationFile} against {DemoConfigFile.SourceFile}: destination differs from source ({described}):");
        foreach (var comparison in comparisons.Where(c => !c.Matches))
        {
            foreach (var difference in comparison.Differences.Take(15))
            {
                Terminal.Line($"  {comparison.Table}: {difference}");
            }

            if (comparison.Differences.Count > 15)
            {
                Terminal.Line($"  {comparison.Table}: … and {N(comparison.Differences.Count - 15)} more differences");
            }
        }

        return false;
    }

    private static void PrintNextSteps(string folder, string configPath, string firstReport, string secondReport)
    {
        var config = Quote(configPath);
        Heading("Next steps");
        Terminal.Line($"The demo's files are in {folder}; its configuration is {configPath}.");
        Terminal.Line($"  deltasync status --config {config}");
        Terminal.Line($"  deltasync state history --config {config} --table orders");
        Terminal.Line($"  deltasync run --config {config}          after changing {DemoConfigFile.SourceFile} with any SQLite tool");
        Terminal.Line("  (from a clone of the repository: dotnet run --project src/DeltaSync.Cli -- <command>)");
        Terminal.Line($"Reports: run 1 {firstReport}");
        Terminal.Line($"         run 2 {secondReport}");
    }

    private static void Heading(string title)
    {
        if (Terminal.IsInteractive)
        {
            AnsiConsole.WriteLine();
            AnsiConsole.Write(new Rule($"[bold]{Markup.Escape(title)}[/]").LeftJustified());
            return;
        }

        Terminal.Line("");
        Terminal.Line($"== {title} ==");
    }

    private static string Keys(IReadOnlyDictionary<string, IReadOnlyList<string>> keys) =>
        string.Join(" and ", keys.Where(k => k.Value.Count > 0).Select(k => $"{k.Key} {string.Join(", ", k.Value)}"));

    private static string Quote(string path) => path.Contains(' ', StringComparison.Ordinal) ? $"\"{path}\"" : path;

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
}
