namespace DeltaSync.Cli.Tests.Demo;

public sealed class DemoCommandTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "deltasync-tests", "demo-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    [Fact]
    public async Task Demo_syncs_only_what_changed_and_the_destination_matches_the_source()
    {
        var result = await CliProcess.RunAsync("demo", "--dir", _folder, "--customers", "300");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("Run 2 moved only what changed", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("destination matches source", result.StandardOutput, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(_folder, "deltasync.yaml")));
        Assert.True(File.Exists(Path.Combine(_folder, "warehouse.db")));
        Assert.Equal(2, Directory.GetFiles(Path.Combine(_folder, "reports"), "sync_*.json").Length);
    }

    [Fact]
    public async Task Running_the_demo_again_recreates_its_files_and_keeps_other_files()
    {
        Directory.CreateDirectory(_folder);
        var notes = Path.Combine(_folder, "notes.txt");
        await File.WriteAllTextAsync(notes, "mine");
        Assert.Equal(0, (await CliProcess.RunAsync("demo", "--dir", _folder, "--customers", "100")).ExitCode);

        var again = await CliProcess.RunAsync("demo", "--dir", _folder, "--customers", "100");

        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("Recreated", again.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("destination matches source", again.StandardOutput, StringComparison.Ordinal);
        Assert.Equal("mine", await File.ReadAllTextAsync(notes));
        Assert.Equal(2, Directory.GetFiles(Path.Combine(_folder, "reports"), "sync_*.json").Length);
    }

    [Fact]
    public async Task Too_few_customers_is_a_usage_error()
    {
        var result = await CliProcess.RunAsync("demo", "--dir", _folder, "--customers", "5");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--customers", result.StandardError, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_folder));
    }
}
