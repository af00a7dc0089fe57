using System.ComponentModel;
using Spectre.Console.Cli;

namespace DeltaSync.Cli.Commands;

/// <summary><c>deltasync demo</c>.</summary>
public sealed class DemoSettings : CommandSettings
{
    [CommandOption("--dir <FOLDER>")]
    [Description("Where to create the demo databases and config (default: ./deltasync-demo).")]
    public string Directory { get; init; } = "deltasync-demo";

    [CommandOption("--customers <N>")]
    [Description("How many customers to generate (orders and products scale with it).")]
    public int Customers { get; init; } = 2000;
}

/// <summary>Generates a sample shop, syncs it fully, changes it, and syncs incrementally.</summary>
public sealed class DemoCommand : AsyncCommand<DemoSettings>
{
    public override Task<int> ExecuteAsync(CommandContext context, DemoSettings settings, CancellationToken cancellationToken) =>
        Demo.DemoRunner.RunAsync(settings, cancellationToken);
}
