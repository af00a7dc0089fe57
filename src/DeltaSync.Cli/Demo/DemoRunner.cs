using DeltaSync.Cli.Commands;

namespace DeltaSync.Cli.Demo;

/// <summary>The demo: being written (see the demo helper).</summary>
internal static class DemoRunner
{
    public static Task<int> RunAsync(DemoSettings settings, CancellationToken cancellationToken) =>
        throw new UsageException("demo is not available in this build");
}
