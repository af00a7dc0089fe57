using System.ComponentModel;
using Spectre.Console.Cli;

namespace DeltaSync.Cli.Commands;

/// <summary>Options every command that reads a configuration (and the state it names) takes.</summary>
public class ConfigSettings : CommandSettings
{
    [CommandOption("-c|--config <FILE>")]
    [Description("The configuration file (YAML).")]
    public string? Config { get; init; }

    [CommandOption("--json")]
    [Description("Machine-readable JSON on standard output.")]
    public bool Json { get; init; }

    [CommandOption("-v|--verbose")]
    [Description("Log progress to standard error.")]
    public bool Verbose { get; init; }
}

/// <summary>Settings of commands that act on some tables.</summary>
public class TableSettings : ConfigSettings
{
    [CommandOption("-t|--table <TABLE>")]
    [Description("Only this table (repeatable). All configured tables when omitted.")]
    public string[] Tables { get; init; } = [];
}
