using DeltaSync.Core.Config;
using NodaTime;

namespace DeltaSync.Core.Tests.Config;

public sealed class StateBackupConfigTests
{
    [Fact]
    public void Without_a_backup_block_there_are_no_backups()
    {
        Assert.Null(ConfigText.Parse(ConfigText.Minimal).State.Backup);
        Assert.Null(ConfigText.Parse(ConfigText.Minimal + "\nstate:\n  backup:").State.Backup);
    }

    [Fact]
    public void An_empty_backup_block_backs_up_hourly_keeping_24_in_backups_beside_the_config()
    {
        var backup = ConfigText.Parse(ConfigText.Minimal + "\nstate:\n  backup: {}").State.Backup;

        Assert.Equal(new StateBackupOptions(Duration.FromHours(1), 24, Path.Combine(ConfigText.Folder, "backups")), backup);
    }

    [Fact]
    public void Backup_settings_bind_with_the_path_resolved_against_the_config_folder()
    {
        var backup = ConfigText.Parse(ConfigText.Minimal + """

            state:
              backup:
                interval: 30 minutes
                keep: 48
                path: state/backups
            """).State.Backup;

        Assert.Equal(new StateBackupOptions(Duration.FromMinutes(30), 48, Path.Combine(ConfigText.Folder, "state", "backups")), backup);
    }

    [Fact]
    public void Invalid_backup_settings_are_each_reported_at_their_key_path()
    {
        var errors = ConfigText.Errors(ConfigText.Minimal + """

            state:
              backup:
                interval: soon
                keep: 0
                folder: backups
            """);

        Assert.Equal(
            [
                ("state.backup.folder", 11, "unknown key 'folder'; expected one of: interval, keep, path"),
                ("state.backup.interval", 9, "expected a duration such as '5 minutes', '30s', '1h30m' or 'PT5M', got 'soon'"),
                ("state.backup.keep", 10, "expected a positive integer, got '0'"),
            ],
            errors.Select(e => (e.KeyPath, e.Line ?? 0, e.Message)).OrderBy(e => e.KeyPath, StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("state:\n  backup: hourly", "state.backup", "expected a mapping of interval, keep, path, got 'hourly'")]
    [InlineData("state:\n  backup: {interval: 0s}", "state.backup.interval", "must be longer than zero")]
    [InlineData("state:\n  backup: {keep: many}", "state.backup.keep", "expected a positive integer, got 'many'")]
    public void Invalid_backup_value_is_reported_at_its_key(string block, string keyPath, string message)
    {
        var error = ConfigText.SingleError(ConfigText.Minimal + "\n" + block);

        Assert.Equal((keyPath, message), (error.KeyPath, error.Message));
        Assert.NotNull(error.Line);
    }
}
