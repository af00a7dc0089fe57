using System.Text.Json.Nodes;
using DeltaSync.Core.Config;
using DeltaSync.Core.Model;
using DeltaSync.Core.State;
using DeltaSync.Core.Tests.Config;
using NodaTime;

namespace DeltaSync.Core.Tests.State;

/// <summary><c>state import</c> into a store that already holds state: merge by default, replace on request.</summary>
public sealed class StateImportTests : IDisposable
{
    private static readonly Instant T0 = Instant.FromUtc(2025, 3, 14, 9, 26, 53);
    private static readonly CancellationToken Ct = CancellationToken.None;

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "deltasync-tests", "import-" + Guid.NewGuid().ToString("N"));
    private readonly SyncConfig _config = ConfigText.Parse(ConfigText.Minimal);
    private readonly FileStateStore _store;
    private readonly StateAdmin _admin;

    public StateImportTests()
    {
        _store = new FileStateStore(_folder);
        _store.InitializeAsync(Ct).GetAwaiter().GetResult();
        _admin = new StateAdmin(_config, _store, SystemClock.Instance);
    }

    public void Dispose()
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    [Fact]
    public async Task Versions_already_present_with_the_same_payload_are_skipped_and_missing_ones_appended()
    {
        await _store.AppendAsync(Stored("s/orders", 1), Ct);
        await _store.AppendAsync(Stored("s/orders", 2), Ct);
        await _store.AddDeadLettersAsync([Letter("s/orders", "1")], Ct);
        var export = Export(
            [("s/orders", [Stored("s/orders", 1), Stored("s/orders", 2), Stored("s/orders", 3)]), ("s/customers", [Stored("s/customers", 1)])],
            [Letter("s/orders", "1"), Letter("s/orders", "2")]);

        var result = await _admin.ImportAsync(export, replace: false, Ct);
        var again = await _admin.ImportAsync(export, replace: false, Ct);

        Assert.Equal((2, 2, 1, 1), (result.Versions, result.VersionsSkipped, result.DeadLetters, result.DeadLettersSkipped));
        Assert.Equal((0, 4, 0, 2), (again.Versions, again.VersionsSkipped, again.DeadLetters, again.DeadLettersSkipped));
        Assert.Empty(result.StreamsAhead);
        Assert.Equal([3L, 2L, 1L], (await _store.ReadHistoryAsync("s/orders", 10, Ct)).Select(h => h.Version));
        Assert.Equal(Stored("s/customers", 1), Assert.Single(await _store.ReadHistoryAsync("s/customers", 10, Ct)));
        Assert.All(await _store.ReadDeadLettersAsync(null, 10, Ct), l => Assert.Equal(1, l.Attempts));
    }

    [Fact]
    public async Task A_version_that_differs_stops_the_import_naming_it_and_nothing_is_written()
    {
        await _store.AppendAsync(Stored("s/orders", 1), Ct);
        await _store.AppendAsync(Stored("s/orders", 2, "the store's own version 2"), Ct);
        var before = await _admin.ExportAsync(Ct);
        var export = Export(
            [("s/customers", [Stored("s/customers", 1)]), ("s/orders", [Stored("s/orders", 1), Stored("s/orders", 2), Stored("s/orders", 3)])],
            [Letter("s/orders", "9")]);

        var error = await Assert.ThrowsAsync<StateImportConflictException>(() => _admin.ImportAsync(export, replace: false, Ct));

        Assert.Equal(["s/orders version 2: the store holds a different checkpoint under this version"], error.Conflicts);
        Assert.Contains("nothing was imported", error.Message, StringComparison.Ordinal);
        Assert.Contains("--replace", error.Message, StringComparison.Ordinal);
        Assert.Equal(Streams(before), Streams(await _admin.ExportAsync(Ct)));
        Assert.Empty(await _store.ReadHistoryAsync("s/customers", 10, Ct));
        Assert.Empty(await _store.ReadDeadLettersAsync(null, 10, Ct));
    }

    [Fact]
    public async Task Replace_removes_the_streams_in_the_file_first_and_leaves_other_streams_alone()
    {
        await _store.AppendAsync(Stored("s/orders", 1), Ct);
        await _store.AppendAsync(Stored("s/orders", 2, "the store's own version 2"), Ct);
        await _store.AppendAsync(Stored("s/orders", 3, "newer than the backup"), Ct);
        await _store.AppendAsync(Stored("s/other", 1), Ct);
        await _store.AddDeadLettersAsync([Letter("s/orders", "old"), Letter("s/other", "kept")], Ct);
        var export = Export([("s/orders", [Stored("s/orders", 1), Stored("s/orders", 2)])], [Letter("s/orders", "restored")]);

        var result = await _admin.ImportAsync(export, replace: true, Ct);

        Assert.Equal(["s/orders"], result.StreamsReplaced);
        Assert.Equal((2, 1), (result.Versions, result.DeadLetters));
        Assert.Equal([Stored("s/orders", 2), Stored("s/orders", 1)], await _store.ReadHistoryAsync("s/orders", 10, Ct));
        Assert.Equal(Stored("s/other", 1), Assert.Single(await _store.ReadHistoryAsync("s/other", 10, Ct)));
        Assert.Equal(["kept", "restored"], (await _store.ReadDeadLettersAsync(null, 10, Ct)).Select(l => l.RecordId).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_store_with_newer_versions_than_the_file_keeps_them_and_says_so()
    {
        await _store.AppendAsync(Stored("s/orders", 1), Ct);
        await _store.AppendAsync(Stored("s/orders", 2), Ct);

        var result = await _admin.ImportAsync(Export([("s/orders", [Stored("s/orders", 1)])], []), replace: false, Ct);

        Assert.Equal(["s/orders"], result.StreamsAhead);
        Assert.Equal((0, 1), (result.Versions, result.VersionsSkipped));
        Assert.Equal(2, (await _store.ReadHistoryAsync("s/orders", 10, Ct)).Count);
    }

    [Fact]
    public async Task A_malformed_file_is_refused_with_the_place_of_the_problem_before_anything_is_written()
    {
        var document = JsonNode.Parse(Export([("s/a", [Stored("s/a", 1)]), ("s/b", [Stored("s/b", 1)])], []))!;
        document["streams"]![1]!["versions"]![0]!.AsObject().Remove("payload");

        var error = await Assert.ThrowsAsync<FormatException>(() => _admin.ImportAsync(document.ToJsonString(), replace: true, Ct));
        var notAnExport = await Assert.ThrowsAsync<FormatException>(() => _admin.ImportAsync("""{"streams":[]}""", replace: false, Ct));

        Assert.StartsWith("streams[1].versions[0]: expected version, saved_at and payload", error.Message, StringComparison.Ordinal);
        Assert.Contains("not a DeltaSync state export", notAnExport.Message, StringComparison.Ordinal);
        Assert.Empty(await _store.ListStreamsAsync(Ct));
    }

    private static StoredCheckpoint Stored(string stream, long version, string? payload = null) =>
        new(stream, version, payload ?? $"{stream} v{version}", T0 + Duration.FromSeconds(version));

    private static DeadLetter Letter(string stream, string recordId) =>
        new(stream, "orders", recordId, "{}", "bad value", ErrorClass.Permanent, Position.Parse("cursor:" + recordId), T0);

    /// <summary>An export document, written by a store holding exactly this state.</summary>
    private string Export(IReadOnlyList<(string Stream, StoredCheckpoint[] Versions)> streams, IReadOnlyList<DeadLetter> letters)
    {
        var source = new FileStateStore(Path.Combine(_folder, "source-" + Guid.NewGuid().ToString("N")));
        source.InitializeAsync(Ct).GetAwaiter().GetResult();
        foreach (var (_, versions) in streams)
        {
            foreach (var version in versions)
            {
                source.AppendAsync(version, Ct).GetAwaiter().GetResult();
            }
        }

        source.AddDeadLettersAsync(letters, Ct).GetAwaiter().GetResult();
        var json = new StateAdmin(_config, source, SystemClock.Instance).ExportAsync(Ct).GetAwaiter().GetResult();
        var document = JsonNode.Parse(json)!;

        // In the order given, as a hand-made or older file might list them.
        var byName = document["streams"]!.AsArray().ToDictionary(s => s!["stream"]!.GetValue<string>(), s => s!.DeepClone());
        document["streams"] = new JsonArray(streams.Select(s => byName[s.Stream]).ToArray());
        return document.ToJsonString();
    }

    private static string Streams(string export) => JsonNode.Parse(export)!["streams"]!.ToJsonString();

    [Fact]
    public async Task An_export_from_a_newer_deltasync_is_refused_and_one_without_conflict_blocks_still_imports()
    {
        // Version 1 (before the conflict blocks): no export_version, no conflict_log, no conflict_reviews.
        var document = JsonNode.Parse(Export([("s/orders", [Stored("s/orders", 1)])], []))!.AsObject();
        Assert.Equal(2, document["export_version"]!.GetValue<int>());
        document.Remove("export_version");
        document.Remove("conflict_log");
        document.Remove("conflict_reviews");
        var older = document.ToJsonString();
        var result = await _admin.ImportAsync(older, replace: false, Ct);
        Assert.Equal((1, 0, 0), (result.Versions, result.ConflictLogEntries, result.ConflictReviews));

        var newer = JsonNode.Parse(older)!.AsObject();
        newer["export_version"] = 99;
        var refused = await Assert.ThrowsAsync<FormatException>(() => _admin.ImportAsync(newer.ToJsonString(), replace: false, Ct));
        Assert.Contains("export_version 99", refused.Message, StringComparison.Ordinal);
    }
}
