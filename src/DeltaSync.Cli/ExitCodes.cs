namespace DeltaSync.Cli;

/// <summary>The process exit codes (a public interface: scripts depend on them).</summary>
internal static class ExitCodes
{
    public const int Completed = 0;
    public const int Failed = 1;
    public const int UsageOrConfig = 2;
    public const int Partial = 3;
}
