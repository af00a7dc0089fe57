using DeltaSync.Cli;
using DeltaSync.Cli.Commands;
using Spectre.Console.Cli;

WarmUp.Start(args);
var app = new CommandApp();
app.Configure(config =>
{
    config.SetApplicationName("deltasync");
    config.SetApplicationVersion(typeof(Program).Assembly.GetName().Version?.ToString(3) ?? "0.1.0");
    config.Settings.StrictParsing = true;
    config.Settings.CancellationExitCode = ExitCodes.Partial;
    config.Settings.ExceptionHandler = (exception, _) => ErrorOutput.Handle(exception);
    config.AddCommand<RunCommand>("run")
        .WithDescription("Sync the configured tables: one pass (--once, the default) or continuously (--follow).")
        .WithExample("run", "--config", "deltasync.yaml")
        .WithExample("run", "--config", "deltasync.yaml", "--table", "orders", "--follow");
    config.AddCommand<ReconcileCommand>("reconcile")
        .WithDescription("Compare the tables with the destination now by key-range checksums and repair drift, hard deletes included.")
        .WithExample("reconcile", "--config", "deltasync.yaml", "--table", "orders");
    config.AddCommand<StatusCommand>("status")
        .WithDescription("Per table: last run, cursor, high-water mark, lag and counts.");
    config.AddBranch("state", state =>
    {
        state.SetDescription("Inspect and repair sync state (checkpoints).");
        state.AddCommand<StateShowCommand>("show").WithDescription("The newest checkpoint of each table.");
        state.AddCommand<StateHistoryCommand>("history").WithDescription("Every checkpoint version of a table.");
        state.AddCommand<StateRollbackCommand>("rollback").WithDescription("Make an older checkpoint version current again (appends a copy).");
        state.AddCommand<StateResetCommand>("reset").WithDescription("Forget tables' state; the next run starts with a snapshot.");
        state.AddCommand<StateValidateCommand>("validate").WithDescription("Check every checkpoint's checksum and format.");
        state.AddCommand<StateExportCommand>("export").WithDescription("Write all state to a JSON file (backup).");
        state.AddCommand<StateImportCommand>("import").WithDescription("Restore state from an export.");
    });
    config.AddBranch("dlq", dlq =>
    {
        dlq.SetDescription("Inspect, replay and purge the dead-letter queue.");
        dlq.AddCommand<DeadLetterListCommand>("list").WithDescription("The queued entries: id, table, record, error class, attempts, when and why.");
        dlq.AddCommand<DeadLetterShowCommand>("show").WithDescription("One entry in full, with its raw record.");
        dlq.AddCommand<DeadLetterReplayCommand>("replay").WithDescription("Re-read entries' records from the source and apply them (after a fix at the source or destination).");
        dlq.AddCommand<DeadLetterPurgeCommand>("purge").WithDescription("Remove entries (--id, --table or --all).");
    });
    config.AddBranch("conflicts", conflicts =>
    {
        conflicts.SetDescription("The conflict review queue: list, inspect and resolve conflicts held for manual review.");
        conflicts.AddCommand<ConflictListCommand>("list").WithDescription("Conflicts waiting for review: id, table, record, type, held fields, sources.");
        conflicts.AddCommand<ConflictShowCommand>("show").WithDescription("One conflict's Conflict Resolution Report and its history.");
        conflicts.AddCommand<ConflictResolveCommand>("resolve")
            .WithDescription("Decide a held conflict (--take SOURCE, --field NAME=SOURCE, --value JSON) and apply it to the destination.")
            .WithExample("conflicts", "resolve", "conflict_0123abcd", "--take", "crm", "--config", "deltasync.yaml");
    });
    config.AddCommand<ValidateConfigCommand>("validate-config")
        .WithDescription("Check a configuration file and list every problem.");
    config.AddCommand<DemoCommand>("demo")
        .WithDescription("Generate a sample SQLite shop, sync it, change it, and sync only what changed.");
});

return await app.RunAsync(args).ConfigureAwait(false);
