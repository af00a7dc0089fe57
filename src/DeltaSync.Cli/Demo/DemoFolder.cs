namespace DeltaSync.Cli.Demo;

/// <summary>
/// The demo's folder. Recreating it removes only the files an earlier demo wrote (databases with their journal files,
/// the config, the state and the run reports), so pointing <c>--dir</c> at a folder with other files loses nothing.
/// </summary>
internal static class DemoFolder
{
    private static readonly string[] Databases = [DemoConfigFile.SourceFile, DemoConfigFile.DestinationFile, DemoConfigFile.StateFile];
    private static readonly string[] DatabaseCompanions = ["", "-wal", "-shm", "-journal"];

    /// <summary>Creates <paramref name="folder"/>, or empties it of an earlier demo; true when there was one.</summary>
    public static bool Prepare(string folder)
    {
        Directory.CreateDirectory(folder);
        var removed = false;
        foreach (var file in Databases.SelectMany(db => DatabaseCompanions.Select(suffix => db + suffix)).Append(DemoConfigFile.FileName))
        {
            removed |= Delete(Path.Combine(folder, file));
        }

        var reports = Path.Combine(folder, "reports");
        if (Directory.Exists(reports))
        {
            foreach (var report in Directory.EnumerateFiles(reports, "sync_*.json"))
            {
                removed |= Delete(report);
            }

            if (!Directory.EnumerateFileSystemEntries(reports).Any())
            {
                Directory.Delete(reports);
            }
        }

        return removed;
    }

    private static bool Delete(string path)
    {
        if (!File.Exists(path))
        {
            return false;
        }

        File.Delete(path);
        return true;
    }
}
