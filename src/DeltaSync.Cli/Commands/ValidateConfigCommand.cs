using System.ComponentModel;
using DeltaSync.Cli.Output;
using DeltaSync.Core.Connectors;
using Spectre.Console.Cli;

namespace DeltaSync.Cli.Commands;

/// <summary><c>deltasync validate-config</c>.</summary>
public sealed class ValidateConfigSettings : ConfigSettings
{
    [CommandArgument(0, "[FILE]")]
    [Description("The configuration file (alternative to --config).")]
    public string? File { get; init; }
}

/// <summary>Loads and validates a configuration; prints every problem with its key path (exit 2) or a summary (exit 0).</summary>
public sealed class ValidateConfigCommand : Command<ValidateConfigSettings>
{
    public override int Execute(CommandContext context, ValidateConfigSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var config = CliHost.LoadConfig(settings.Config ?? settings.File);
        var plans = TablePlan.FromConfig(config);
        if (settings.Json)
        {
            Terminal.WriteJson(new
            {
                valid = true,
                sync = config.Name,
                source = ConnectionText.Redact(config.Sync.Source.Connection),
                destination = ConnectionText.Redact(config.Sync.Destination.Connection),
                sources = config.Sync.IsMultiSource ? config.Sync.Sources.Select(s => new { name = s.Name, connection = ConnectionText.Redact(s.Connection) }) : null,
                tables = plans.Select(p => new { table = p.Table, source = config.Sync.IsMultiSource ? p.SourceName : null, cdc_method = p.Method.ToString().ToLowerInvariant(), priority = p.Priority.ToString().ToLowerInvariant() }),
            });
            return ExitCodes.Completed;
        }

        Terminal.Line($"{config.ConfigPath}: valid");
        Terminal.Line($"sync '{config.Name}': {string.Join(" + ", config.Sync.Sources.Select(s => config.Sync.IsMultiSource ? $"{s.Name} ({ConnectionText.Redact(s.Connection)})" : ConnectionText.Redact(s.Connection)))} → {ConnectionText.Redact(config.Sync.Destination.Connection)}");
        Terminal.Table(
            ["table", "cdc_method", "priority", "primary key"],
            plans.Select(p => new[] { config.Sync.IsMultiSource ? $"{p.Table} ({p.SourceName})" : p.Table, p.Method.ToString().ToLowerInvariant(), p.Priority.ToString().ToLowerInvariant(), p.PrimaryKey is null ? "(from catalog)" : string.Join(", ", p.PrimaryKey) }));
        return ExitCodes.Completed;
    }
}
