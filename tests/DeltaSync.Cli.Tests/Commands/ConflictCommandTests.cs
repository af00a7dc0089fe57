using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Cli.Tests.Commands;

/// <summary><c>deltasync conflicts list|show|resolve</c> run as a process, on two SQLite sources whose edits of one field are held for review.</summary>
public sealed class ConflictCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("deltasync-conflicts-").FullName;

    [Fact]
    public async Task List_show_and_resolve_work_on_the_review_queue_with_their_documented_exit_codes_and_json()
    {
        var config = CreateSources();
        var first = await CliProcess.RunAsync("run", "--config", config);
        Assert.True(first.ExitCode == 0, first.ToString());
        Execute("crm.db", $"UPDATE customers SET email = 'ann@crm', updated_at = '{Ago(30)}' WHERE id = 1");
        Execute("shop.db", $"UPDATE customers SET email = 'ann@shop', updated_at = '{Ago(20)}' WHERE id = 1");
        var second = await CliProcess.RunAsync("run", "--config", config, "--json");
        Assert.True(second.ExitCode == 0, second.ToString());
        using (var report = JsonDocument.Parse(second.StandardOutput))
        {
            Assert.Equal(1, report.RootElement.GetProperty("statistics").GetProperty("conflicts_detected").GetInt64());
            Assert.Equal(0, report.RootElement.GetProperty("statistics").GetProperty("conflicts_resolved").GetInt64());
            var conflict = Assert.Single(report.RootElement.GetProperty("conflicts").EnumerateArray());
            Assert.Equal("1", conflict.GetProperty("record_id").GetString());
            Assert.Equal("manual_review", conflict.GetProperty("resolution").GetString());
        }

        var list = await CliProcess.RunAsync("conflicts", "list", "--config", config, "--json");
        Assert.True(list.ExitCode == 0, list.ToString());
        string id;
        using (var json = JsonDocument.Parse(list.StandardOutput))
        {
            var item = Assert.Single(json.RootElement.EnumerateArray());
            id = item.GetProperty("conflict_id").GetString()!;
            Assert.StartsWith("conflict_", id, StringComparison.Ordinal);
            Assert.Equal("1", item.GetProperty("record_id").GetString());
            Assert.Equal("customers", item.GetProperty("table").GetString());
            Assert.Equal("pending_review", item.GetProperty("status").GetString());
            Assert.Equal(["email"], item.GetProperty("held_fields").EnumerateArray().Select(f => f.GetString()));
        }

        var plain = await CliProcess.RunAsync("conflicts", "list", "--config", config);
        Assert.Equal(0, plain.ExitCode);
        Assert.Contains(id, plain.StandardOutput, StringComparison.Ordinal);

        var show = await CliProcess.RunAsync("conflicts", "show", id, "--config", config, "--json");
        Assert.True(show.ExitCode == 0, show.ToString());
        using (var json = JsonDocument.Parse(show.StandardOutput))
        {
            var root = json.RootElement;
            Assert.Equal(id, root.GetProperty("conflict_id").GetString());
            Assert.Equal("1", root.GetProperty("record_id").GetString());
            Assert.Equal("update_conflict", root.GetProperty("conflict_type").GetString());
            Assert.Equal(2, root.GetProperty("sources").GetArrayLength());
            Assert.Equal("pending_review", root.GetProperty("status").GetString());
            Assert.Contains(root.GetProperty("history").EnumerateArray(), e => e.GetProperty("kind").GetString() == "detected");
        }

        // The text history tells a decision that holds fields from one that settles them (both are logged as "resolved").
        var heldText = await CliProcess.RunAsync("conflicts", "show", id, "--config", config);
        Assert.True(heldText.ExitCode == 0, heldText.ToString());
        Assert.Contains(" detected (", heldText.StandardOutput, StringComparison.Ordinal);
        Assert.Contains(" held for manual review (email; manual_review) (", heldText.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain(" resolved (", heldText.StandardOutput, StringComparison.Ordinal);

        Assert.Equal(1, (await CliProcess.RunAsync("conflicts", "show", "conflict_0000000000000000", "--config", config)).ExitCode);
        var undecided = await CliProcess.RunAsync("conflicts", "resolve", id, "--config", config);
        Assert.Equal(2, undecided.ExitCode);
        Assert.Contains("needs a decision", undecided.StandardError, StringComparison.Ordinal);
        var nobody = await CliProcess.RunAsync("conflicts", "resolve", id, "--field", "email=nobody", "--config", config);
        Assert.Equal(2, nobody.ExitCode);
        Assert.Contains("not a candidate", nobody.StandardError, StringComparison.Ordinal);

        var resolve = await CliProcess.RunAsync("conflicts", "resolve", id, "--field", "email=shop", "--by", "ops", "--config", config, "--json");
        Assert.True(resolve.ExitCode == 0, resolve.ToString());
        using (var json = JsonDocument.Parse(resolve.StandardOutput))
        {
            var resolution = json.RootElement.GetProperty("resolution");
            Assert.Equal("ann@shop", resolution.GetProperty("resolved_values").GetProperty("email").GetString());
            Assert.Equal("ops", resolution.GetProperty("resolved_by").GetString());
        }

        Assert.Equal("ann@shop", Execute("dest.db", "SELECT email FROM customers WHERE id = 1"));
        using (var json = JsonDocument.Parse((await CliProcess.RunAsync("conflicts", "list", "--config", config, "--json")).StandardOutput))
        {
            Assert.Equal(0, json.RootElement.GetArrayLength());
        }

        using (var json = JsonDocument.Parse((await CliProcess.RunAsync("conflicts", "show", id, "--config", config, "--json")).StandardOutput))
        {
            Assert.Equal("resolved", json.RootElement.GetProperty("status").GetString());
            Assert.Equal("ops", json.RootElement.GetProperty("resolution").GetProperty("resolved_by").GetString());
        }

        var settledText = await CliProcess.RunAsync("conflicts", "show", id, "--config", config);
        Assert.Contains(" held for manual review (email; manual_review) (", settledText.StandardOutput, StringComparison.Ordinal);
        Assert.Contains(", by ops) (", settledText.StandardOutput, StringComparison.Ordinal);

        Assert.Equal(1, (await CliProcess.RunAsync("conflicts", "resolve", id, "--take", "shop", "--config", config)).ExitCode);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Resolving_a_review_keeps_what_the_destination_changed_out_of_band_meanwhile(bool deleteRow)
    {
        var config = CreateSources();
        Assert.Equal(0, (await CliProcess.RunAsync("run", "--config", config)).ExitCode);
        Execute("crm.db", $"UPDATE customers SET email = 'ann@crm', updated_at = '{Ago(30)}' WHERE id = 1");
        Execute("shop.db", $"UPDATE customers SET email = 'ann@shop', updated_at = '{Ago(20)}' WHERE id = 1");
        Assert.Equal(0, (await CliProcess.RunAsync("run", "--config", config)).ExitCode);
        string id;
        using (var json = JsonDocument.Parse((await CliProcess.RunAsync("conflicts", "list", "--config", config, "--json")).StandardOutput))
        {
            id = Assert.Single(json.RootElement.EnumerateArray()).GetProperty("conflict_id").GetString()!;
        }

        // While the email waits for review, someone fixes the name at the destination (or removes the row).
        Execute("dest.db", deleteRow ? "DELETE FROM customers WHERE id = 1" : "UPDATE customers SET name = 'Ann (fixed)' WHERE id = 1");

        var resolve = await CliProcess.RunAsync("conflicts", "resolve", id, "--take", "shop", "--config", config);
        Assert.True(resolve.ExitCode == 0, resolve.ToString());

        // The decision settles the email only: the edit out-of-band is not reverted (nor the row brought back).
        Assert.Equal(deleteRow ? 0L : 1L, Execute("dest.db", "SELECT count(*) FROM customers WHERE id = 1"));
        if (!deleteRow)
        {
            Assert.Equal("Ann (fixed)|ann@shop", Execute("dest.db", "SELECT name || '|' || email FROM customers WHERE id = 1"));
        }

        Assert.Equal(0, (await CliProcess.RunAsync("run", "--config", config)).ExitCode);
        Assert.Equal(deleteRow ? 0L : 1L, Execute("dest.db", "SELECT count(*) FROM customers WHERE id = 1"));
        if (!deleteRow)
        {
            Assert.Equal("Ann (fixed)", Execute("dest.db", "SELECT name FROM customers WHERE id = 1"));
        }
    }

    private static string Ago(int seconds) =>
        DateTime.UtcNow.AddSeconds(-seconds).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private object? Execute(string database, string sql) => SqliteFile.Execute(_dir, database, sql);

    private string CreateSources()
    {
        foreach (var db in new[] { "crm.db", "shop.db" })
        {
            Execute(db, $"""
                CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, updated_at TEXT NOT NULL);
                INSERT INTO customers VALUES (1, 'Ann', 'ann@old', '{Ago(120)}');
                """);
        }

        var path = Path.Combine(_dir, "conflicts.yaml");
        File.WriteAllText(path, """
            sync:
              sources:
                - {name: crm, connection: "sqlite:crm.db", tables: [customers]}
                - {name: shop, connection: "sqlite:shop.db", tables: [customers]}
              destination: {connection: "sqlite:dest.db"}
            conflict_resolution:
              default_strategy: manual_review
            """);
        return path;
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // Left for the system's temp cleanup.
        }
    }
}
