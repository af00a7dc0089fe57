using DeltaSync.Sqlite.Destination;
using DeltaSync.Sqlite.Tests.Engine;

namespace DeltaSync.Sqlite.Tests.Destination;

/// <summary>
/// A state store in the destination's own SQLite file must not be written while a batch holds the file's writer: the
/// destination recognises its file by any path to it, so the conflict log is then written before the batch.
/// </summary>
public sealed class SharedStateFileTests
{
    [Fact]
    public async Task The_destination_recognises_its_file_by_any_path_and_nothing_else()
    {
        using var workspace = new SyncWorkspace();
        var folder = workspace.Folder;
        var real = Directory.CreateDirectory(Path.Combine(folder, "run=1")).FullName;
        var file = Path.Combine(real, "warehouse.db");
        var link = Path.Combine(folder, "link");
        Directory.CreateSymbolicLink(link, real);
        File.CreateSymbolicLink(Path.Combine(folder, "alias.db"), file);
        await using var destination = new SqliteDestination(file);

        foreach (var same in new[]
        {
            "sqlite:run=1/warehouse.db",
            "sqlite:./run=1/../run=1/warehouse.db",
            $"sqlite://{file}",
            $"sqlite:{link}/warehouse.db",
            "run=1/warehouse.db",
            "Data Source=run=1/warehouse.db",
            "alias.db",
        })
        {
            Assert.True(destination.SharesStorageWith(same, folder), same);
        }

        foreach (var other in new[] { "sqlite:run=1/state.db", "sqlite:warehouse.db", "postgresql://u@localhost/db", "redis://localhost:6379" })
        {
            Assert.False(destination.SharesStorageWith(other, folder), other);
        }
    }
}
