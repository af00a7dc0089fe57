using DeltaSync.Core.Config;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DeltaSync.Cli;

/// <summary>Turns exceptions into a clear message and an exit code: never a stack trace as the user interface.</summary>
internal static class ErrorOutput
{
    public static int Handle(Exception exception)
    {
        var console = Console.Error;
        switch (exception)
        {
            case ConfigException config when config.Errors.Count > 0:
                console.WriteLine($"error: invalid configuration ({config.Errors.Count} problem{(config.Errors.Count == 1 ? "" : "s")}):");
                foreach (var error in config.Errors)
                {
                    console.WriteLine("  " + error);
                }

                return ExitCodes.UsageOrConfig;
            case ConfigException config:
                console.WriteLine("error: " + config.Message);
                return ExitCodes.UsageOrConfig;
            case CommandParseException or CommandRuntimeException:
                console.WriteLine("error: " + exception.Message);
                console.WriteLine("Run 'deltasync --help' for usage.");
                return ExitCodes.UsageOrConfig;
            case UsageException usage:
                console.WriteLine("error: " + usage.Message);
                return ExitCodes.UsageOrConfig;
            case SyncException sync:
                console.WriteLine($"error ({sync.ErrorClass.ToString().ToLowerInvariant()}): {sync.Message}");
                return ExitCodes.Failed;
            case DeadLetterNotFoundException missing:
                console.WriteLine("error: " + missing.Message);
                return ExitCodes.Failed;
            case CheckpointCorruptException corrupt:
                console.WriteLine("error: " + corrupt.Message);
                return ExitCodes.Failed;
            case OperationCanceledException:
                console.WriteLine("stopped.");
                return ExitCodes.Partial;
            case IOException or UnauthorizedAccessException or InvalidOperationException or FormatException:
                console.WriteLine("error: " + exception.Message);
                return ExitCodes.Failed;
            default:
                console.WriteLine($"error: unexpected {exception.GetType().Name}: {exception.Message}");
                if (Environment.GetEnvironmentVariable("DELTASYNC_DEBUG") == "1")
                {
                    AnsiConsole.WriteException(exception);
                }
                else
                {
                    console.WriteLine("Set DELTASYNC_DEBUG=1 for details.");
                }

                return ExitCodes.Failed;
        }
    }
}

/// <summary>The command line was understood but cannot be carried out as given.</summary>
internal sealed class UsageException : Exception
{
    public UsageException()
    {
    }

    public UsageException(string message)
        : base(message)
    {
    }

    public UsageException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
