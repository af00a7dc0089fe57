using System.Text;
using DeltaSync.Core.Config;
using NodaTime;
using NodaTime.Text;

namespace DeltaSync.Core.State;

/// <summary>A backup file in the <c>state.backup</c> folder and when it was taken (from its name).</summary>
public sealed record StateBackupFile(string Path, Instant TakenAt);

/// <summary>
/// <c>state.backup</c>: after a run (and after each pass of <c>run --follow</c>) the state is written, as the document
/// <c>state export</c> writes, to <c>&lt;path&gt;/deltasync-state-&lt;UTC yyyyMMddTHHmmssZ&gt;.json</c> when the newest backup
/// there is at least <c>interval</c> old; backups beyond the newest <c>keep</c> are deleted. <c>state import</c>
/// restores one.
/// </summary>
/// <remarks>
/// When a backup was taken is read from its file name (written from the engine's clock), not from file times that a
/// copy or restore changes. Only files named like a backup are looked at or deleted, so the folder can hold other files;
/// two syncs need two folders, or they prune each other's backups.
/// </remarks>
public sealed class StateBackup
{
    /// <summary>How every backup's file name starts.</summary>
    public const string FilePrefix = "deltasync-state-";

    private const string FileSuffix = ".json";

    // Fixed width, so names sort by time; no ':' so that they are valid on every file system.
    private static readonly InstantPattern FileTime = InstantPattern.CreateWithInvariantCulture("uuuuMMdd'T'HHmmss'Z'");

    private readonly StateBackupOptions _options;
    private readonly StateAdmin _admin;
    private readonly IClock _clock;

    public StateBackup(SyncConfig config, IStateStore store, IClock clock)
    {
        ArgumentNullException.ThrowIfNull(config);
        _options = config.State.Backup ?? throw new ArgumentException("the configuration has no state.backup block", nameof(config));
        _admin = new StateAdmin(config, store, clock);
        _clock = clock;
    }

    /// <summary>
    /// The backup a run ends with, when <c>state.backup</c> is configured and one is due. A failure never fails the run:
    /// it comes back as a warning for the run's report (null when there is nothing to say).
    /// </summary>
    public static async Task<string?> AfterRunAsync(SyncConfig config, IStateStore store, IClock clock, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.State.Backup is not { } options)
        {
            return null;
        }

        try
        {
            await new StateBackup(config, store, clock).TakeIfDueAsync(cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return $"State backup to {options.Folder} skipped: the run was stopped. The next run takes it.";
        }
        catch (Exception e)
        {
            return $"State backup to {options.Folder} failed: {e.Message}. The sync itself is not affected; the next run tries again.";
        }
    }

    /// <summary>The backups in the folder, newest first.</summary>
    public IReadOnlyList<StateBackupFile> List()
    {
        if (!Directory.Exists(_options.Folder))
        {
            return [];
        }

        var backups = new List<StateBackupFile>();
        foreach (var path in Directory.EnumerateFiles(_options.Folder, FilePrefix + "*" + FileSuffix))
        {
            var name = Path.GetFileName(path);
            var stamp = name[FilePrefix.Length..^FileSuffix.Length];
            if (FileTime.Parse(stamp) is { Success: true } parsed)
            {
                backups.Add(new StateBackupFile(path, parsed.Value));
            }
        }

        backups.Sort((a, b) => b.TakenAt.CompareTo(a.TakenAt));
        return backups;
    }

    /// <summary>
    /// Writes a backup when the newest one is at least the interval old (or there is none), then deletes the oldest
    /// beyond <c>keep</c>. Returns the file written, or null when none was due.
    /// </summary>
    public async Task<string?> TakeIfDueAsync(CancellationToken cancellationToken)
    {
        var now = _clock.GetCurrentInstant();
        var backups = List();
        string? written = null;
        if (backups.Count == 0 || now - backups[0].TakenAt >= _options.Interval)
        {
            var json = await _admin.ExportAsync(cancellationToken).ConfigureAwait(false);
            written = Path.Combine(_options.Folder, FilePrefix + FileTime.Format(now) + FileSuffix);
            await DurableFile.ReplaceAsync(written, Encoding.UTF8.GetBytes(json), cancellationToken).ConfigureAwait(false);
            backups = List();
        }

        foreach (var old in backups.Skip(_options.Keep))
        {
            File.Delete(old.Path);
        }

        return written;
    }
}
