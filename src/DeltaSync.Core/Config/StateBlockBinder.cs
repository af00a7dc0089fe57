using DeltaSync.Core.Time;

namespace DeltaSync.Core.Config;

/// <summary>Binds the <c>state</c> block: where checkpoints live, how often they are written and how recovery behaves.</summary>
internal static class StateBlockBinder
{
    public const long DefaultRecordInterval = 1000;
    public const long DefaultSecondsInterval = 60;
    public const int DefaultBackupKeep = 24;
    public const string DefaultBackupFolder = "backups";
    public static readonly NodaTime.Duration DefaultBackupInterval = NodaTime.Duration.FromHours(1);

    /// <param name="state">The block (possibly absent).</param>
    /// <param name="baseDirectory">The configuration file's folder.</param>
    /// <param name="stateFileStem">The configuration file's name without its extension: default state lives beside it.</param>
    public static StateOptions Bind(YamlSection state, string baseDirectory, string stateFileStem) => new(
        BindStorage(state.Section("storage", ConfigKeys.Storage), baseDirectory, stateFileStem),
        BindCheckpointing(state.Section("checkpointing", ConfigKeys.Checkpointing)),
        BindRecovery(state.Section("recovery", ConfigKeys.Recovery)))
    {
        Backup = BindBackup(state.Section("backup", ConfigKeys.Backup), baseDirectory),
    };

    private static StateStorageOptions BindStorage(YamlSection storage, string baseDirectory, string stem)
    {
        var type = storage.Choice("type", StateStorageType.Database, ConfigChoices.StorageTypes);
        var connection = storage.Text("connection");
        var path = storage.Text("path");
        switch (type)
        {
            case StateStorageType.File:
                if (connection is not null && path is not null)
                {
                    storage.Report("path", "set either 'path' or 'connection' for a file store, not both");
                }

                if (connection is not null && LooksLikeUri(connection))
                {
                    // A file store is a folder: 'sqlite:x.db' would become a folder named 'sqlite:x.db'.
                    storage.Report("connection", $"a file store takes a folder path, and '{Connectors.ConnectionText.Redact(connection)}' is a connection URI: for a database use type: database, for Redis type: redis");
                }

                return new StateStorageOptions(type, ResolveFolder(storage, path ?? connection ?? stem + ".state", baseDirectory));

            case StateStorageType.Redis:
                ReportPathNotApplicable(storage, path);
                if (connection is null && ConfigReader.IsNull(storage["connection"]))
                {
                    storage.Report("connection", "is required for a redis store: the server, e.g. localhost:6379");
                }

                return new StateStorageOptions(type, connection ?? string.Empty);

            default:
                ReportPathNotApplicable(storage, path);
                // Connections are kept as written (the connector resolves them against the config folder);
                // only the default is made absolute here, so it does not depend on the working directory.
                return new StateStorageOptions(type, connection ?? "sqlite:" + Path.GetFullPath(Path.Combine(baseDirectory, stem + ".state.db")));
        }
    }

    /// <summary>Whether a connection is written as <c>scheme:…</c> (<c>sqlite:</c>, <c>postgresql://</c>, <c>redis://</c>), not as a path.</summary>
    private static bool LooksLikeUri(string connection)
    {
        var colon = connection.IndexOf(':', StringComparison.Ordinal);
        // "C:\state" is a Windows drive, not a scheme.
        return colon > 1 && connection[..colon].All(c => char.IsAsciiLetterOrDigit(c) || c is '+' or '-' or '.') && char.IsAsciiLetter(connection[0]);
    }

    /// <summary>An absent block means no backups; <c>backup: {}</c> takes every default.</summary>
    private static StateBackupOptions? BindBackup(YamlSection backup, string baseDirectory)
    {
        if (!backup.IsPresent)
        {
            return null;
        }

        var interval = backup.Duration("interval", DefaultBackupInterval);
        var keep = backup.Integer("keep", DefaultBackupKeep, min: 1);
        var folder = backup.Text("path") ?? DefaultBackupFolder;
        return new StateBackupOptions(interval, keep, ResolveFolder(backup, folder, baseDirectory));
    }

    private static void ReportPathNotApplicable(YamlSection storage, string? path)
    {
        if (path is not null)
        {
            storage.Report("path", "applies only to type 'file'; use 'connection' for a database or redis store");
        }
    }

    private static string ResolveFolder(YamlSection storage, string folder, string baseDirectory)
    {
        try
        {
            return Path.GetFullPath(Path.Combine(baseDirectory, folder));
        }
        catch (ArgumentException)
        {
            storage.Report(storage["path"] is null ? "connection" : "path", "is not a valid folder path");
            return folder;
        }
    }

    private static CheckpointingOptions BindCheckpointing(YamlSection checkpointing)
    {
        var frequency = checkpointing.Choice("frequency", CheckpointFrequency.EveryBatch, ConfigChoices.CheckpointFrequencies);
        if (frequency != CheckpointFrequency.TimeBased)
        {
            return new CheckpointingOptions(frequency, checkpointing.Integer64("interval", DefaultRecordInterval));
        }

        // For time_based the interval is seconds; a duration ("30s", "5 minutes") says the same thing more clearly.
        var text = checkpointing.Text("interval");
        if (text is null)
        {
            return new CheckpointingOptions(frequency, DefaultSecondsInterval);
        }

        if (!long.TryParse(text, out _) && DurationParser.TryParse(text, out var duration))
        {
            var seconds = (long)duration.TotalSeconds;
            if (seconds >= 1 && duration == NodaTime.Duration.FromSeconds(seconds))
            {
                return new CheckpointingOptions(frequency, seconds);
            }

            checkpointing.Report("interval", $"expected a whole number of seconds (at least 1), got {ConfigReader.Quote(text)}");
            return new CheckpointingOptions(frequency, DefaultSecondsInterval);
        }

        return new CheckpointingOptions(frequency, checkpointing.Integer64("interval", DefaultSecondsInterval));
    }

    private static RecoveryOptions BindRecovery(YamlSection recovery) => new(
        recovery.Boolean("validate_on_start", true),
        recovery.Boolean("auto_repair", true),
        recovery.Boolean("reset_on_corruption", false));
}
