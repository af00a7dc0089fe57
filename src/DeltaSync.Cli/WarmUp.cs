using System.Security.Cryptography;
using NodaTime;
using NodaTime.Text;

namespace DeltaSync.Cli;

/// <summary>
/// One-time initialization every sync needs — the YAML parser's tables (it compiles a regular expression), SQLite's
/// native library, OpenSSL behind SHA-256 (checkpoint checksums, batch identities) and NodaTime's ISO patterns — started
/// on a pool thread while the main thread parses the command line. The main thread would otherwise do each of them in
/// turn when it first needs them; on two cores the two threads overlap. Nothing here changes what a command does: a
/// step that fails is simply done again, and reported, where it is needed.
/// </summary>
internal static class WarmUp
{
    /// <summary>Starts the warm-up for commands that open a configuration (not for <c>--help</c> or <c>--version</c>).</summary>
    public static void Start(IReadOnlyList<string> args)
    {
        if (!args.Any(a => a == "--config" || a.StartsWith("--config=", StringComparison.Ordinal)))
        {
            return;
        }

        _ = Task.Run(Run);
    }

    private static void Run()
    {
        Try(static () =>
        {
            var parser = new YamlDotNet.Core.Parser(new StringReader("warm: up\n"));
            while (parser.MoveNext())
            {
            }
        });
        // Through Microsoft.Data.Sqlite's own static initialization (which the runtime runs once, whichever thread gets
        // there first), never a second SQLitePCL provider set up beside the one the main thread uses.
        Try(static () => new Microsoft.Data.Sqlite.SqliteConnection().Dispose());
        Try(static () => SHA256.HashData([]));
        Try(static () => InstantPattern.ExtendedIso.Format(Instant.FromUnixTimeSeconds(0)));
    }

    private static void Try(Action step)
    {
        try
        {
            step();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Done again where it is needed, which reports the failure properly.
        }
    }
}
