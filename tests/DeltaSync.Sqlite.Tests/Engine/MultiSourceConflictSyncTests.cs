using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.Reporting;
using DeltaSync.Sqlite.Destination;
using Microsoft.Extensions.Logging.Abstractions;
using NodaTime;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>
/// Two SQLite sources (<c>crm</c>, <c>shop</c>) writing one SQLite destination through the real engine: records meet by
/// key, changes merge field by field, conflicts are detected, resolved by policy or held for review, logged in the
/// state store and reported; a review resolved afterwards reaches the destination.
/// </summary>
public sealed class MultiSourceConflictSyncTests : IDisposable
{
    private static readonly Instant Start = Instant.FromUtc(2026, 3, 1, 12, 0);

    private readonly SyncWorkspace _workspace = new();
    private readonly ManualClock _clock = new(Start);
    private readonly SqliteTestDb _crm;
    private readonly SqliteTestDb _shop;

    public MultiSourceConflictSyncTests()
    {
        _crm = new SqliteTestDb(Path.Combine(_workspace.Folder, "crm.db"));
        _shop = new SqliteTestDb(Path.Combine(_workspace.Folder, "shop.db"));
        foreach (var db in new[] { _crm, _shop })
        {
            db.Execute(CreateCustomers);
        }
    }

    private const string CreateCustomers = """
        CREATE TABLE customers (
          id INTEGER PRIMARY KEY,
          name TEXT NOT NULL,
          email TEXT,
          phone TEXT,
          updated_at TEXT NOT NULL,
          deleted_at TEXT)
        """;

    private static string Yaml(string conflictResolution = "{default_strategy: last_write_wins}") => $$$"""
        sync:
          sources:
            - {name: crm, connection: "sqlite:crm.db", tables: [{name: customers, soft_delete: {field: deleted_at}}]}
            - {name: shop, connection: "sqlite:shop.db", tables: [{name: customers, soft_delete: {field: deleted_at}}]}
          destination: {connection: "sqlite:dest.db"}
        conflict_resolution: {{{conflictResolution}}}
        """;

    /// <summary>A source change stamped <paramref name="secondsAgo"/> before the source clock now.</summary>
    private void Upsert(SqliteTestDb db, long id, string name, string? email, string? phone, int secondsAgo, bool deleted = false)
    {
        var at = ItemsTable.Timestamp(_clock.Now - Duration.FromSeconds(secondsAgo));
        db.Execute(
            "INSERT INTO customers (id, name, email, phone, updated_at, deleted_at) VALUES ($id, $name, $email, $phone, $at, $deleted) " +
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email, phone = excluded.phone, updated_at = excluded.updated_at, deleted_at = excluded.deleted_at",
            ("$id", id),
            ("$name", name),
            ("$email", email),
            ("$phone", phone),
            ("$at", at),
            ("$deleted", deleted ? at : null));
    }

    /// <summary>Customer 1 as both sources and the destination held it before the sources met (common ground).</summary>
    private void SeedSynced()
    {
        Upsert(_crm, 1, "Ann", "ann@old", "111", 600);
        _shop.Execute($"ATTACH '{_crm.Path}' AS crm; INSERT INTO customers SELECT * FROM crm.customers");
        _workspace.Destination.Execute(CreateCustomers);
        _workspace.Destination.Execute($"ATTACH '{_crm.Path}' AS crm; INSERT INTO customers SELECT * FROM crm.customers");
    }

    private async Task<SyncReport> RunAsync(string? yaml = null)
    {
        _clock.Advance(Duration.FromMinutes(1));
        return await _workspace.RunCompletedAsync(_workspace.Configure(yaml ?? Yaml()), clock: _clock);
    }

    private object? Dest(string column, long id = 1) =>
        _workspace.Destination.Scalar($"SELECT {column} FROM customers WHERE id = $id", ("$id", id));

    [Fact]
    public async Task An_unreadable_record_base_in_a_batch_merged_in_parallel_fails_the_table_with_its_own_message()
    {
        // 600 records: more than a batch merged on one thread, so the merge runs on every core.
        for (var id = 1; id <= 600; id++)
        {
            Upsert(_crm, id, $"c{id}", null, null, 600);
        }

        await RunAsync();
        _workspace.Destination.Execute($"UPDATE {SqliteDestination.RecordsTable} SET body = 'not a record base' WHERE key IN (SELECT key FROM {SqliteDestination.RecordsTable} LIMIT 1)");
        // Edited out-of-band, every row no longer is what crm's last merge left: every record takes the full merge.
        _workspace.Destination.Execute("UPDATE customers SET phone = 'edited'");
        _crm.Execute($"UPDATE customers SET name = name || '!', updated_at = '{ItemsTable.Timestamp(_clock.Now)}'");

        _clock.Advance(Duration.FromMinutes(1));
        var report = await _workspace.RunAsync(_workspace.Configure(Yaml()), clock: _clock);

        var crm = Assert.Single(report.Tables, t => t.Source == "crm");
        Assert.Equal("failed", crm.Status);
        var error = Assert.Single(report.Errors);
        Assert.Contains("is not readable", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("One or more errors", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Changes_to_different_fields_by_two_sources_merge_without_conflict()
    {
        SeedSynced();
        var first = await RunAsync();
        Assert.Equal(0, first.Statistics.ConflictsDetected);
        Assert.Equal(0, SyncWorkspace.Writes(first));

        Upsert(_crm, 1, "Ann", "ann@crm", "111", 30);
        Upsert(_shop, 1, "Ann", "ann@old", "222", 20);
        var newest = ItemsTable.Timestamp(_clock.Now - Duration.FromSeconds(20));
        var report = await RunAsync();

        Assert.Equal(0, report.Statistics.ConflictsDetected);
        Assert.Empty(report.Conflicts);
        Assert.Equal("ann@crm", Dest("email"));
        Assert.Equal("222", Dest("phone"));
        // The tracking column is bookkeeping, not data: the newest stamp, never a conflict.
        Assert.Equal(newest, Dest("updated_at"));
        Assert.Equal(["sync/crm/customers", "sync/shop/customers"], TablePlan.FromConfig(_workspace.Configure(Yaml())).Select(p => p.Stream));
        Assert.Equal(["crm", "shop"], report.Tables.Select(t => t.Source).Order());
    }

    [Fact]
    public async Task Two_sources_starting_from_the_same_rows_do_not_conflict_on_later_changes_to_different_fields()
    {
        Upsert(_crm, 1, "Ann", "ann@old", "111", 600);
        Upsert(_shop, 1, "Ann", "ann@old", "111", 600);
        var first = await RunAsync();
        Assert.Equal(1, first.Statistics.RecordsInserted);

        Upsert(_crm, 1, "Ann", "ann@crm", "111", 30);
        Upsert(_shop, 1, "Ann", "ann@old", "222", 20);
        var report = await RunAsync();

        Assert.Equal(0, report.Statistics.ConflictsDetected);
        Assert.Equal(("ann@crm", "222"), (Dest("email"), Dest("phone")));
    }

    [Fact]
    public async Task A_source_that_synced_the_table_alone_does_not_take_another_sources_later_write_for_its_own_change()
    {
        Upsert(_crm, 1, "Ann", "ann@old", "111", 600);
        _shop.Execute($"ATTACH '{_crm.Path}' AS crm; INSERT INTO customers SELECT * FROM crm.customers");
        await RunAsync("""
            sync:
              sources:
                - {name: crm, connection: "sqlite:crm.db", tables: [{name: customers, soft_delete: {field: deleted_at}}]}
              destination: {connection: "sqlite:dest.db"}
            """);
        // shop joins: the row crm synced alone is common ground of both.
        Assert.Equal(0, (await RunAsync()).Statistics.ConflictsDetected);

        // shop's change merges first (alone in its run), then crm changes another field.
        Upsert(_shop, 1, "Ann S.", "ann@old", "111", 30);
        Assert.Equal(0, (await RunAsync()).Statistics.ConflictsDetected);
        Upsert(_crm, 1, "Ann", "ann@crm", "111", 20);
        var report = await RunAsync();

        // crm still reports the name it synced: no change of its own, neither a conflict nor (the later write) a revert.
        Assert.Equal(0, report.Statistics.ConflictsDetected);
        Assert.Equal(("Ann S.", "ann@crm"), (Dest("name"), Dest("email")));
    }

    [Fact]
    public async Task Same_field_changed_by_both_sources_is_an_update_conflict_resolved_by_last_write()
    {
        SeedSynced();
        await RunAsync();
        Upsert(_crm, 1, "Ann", "ann@crm", "111", 40);
        Upsert(_shop, 1, "Ann", "ann@shop", "111", 10);

        var report = await RunAsync();

        Assert.Equal("ann@shop", Dest("email"));
        Assert.Equal(1, report.Statistics.ConflictsDetected);
        Assert.Equal(1, report.Statistics.ConflictsResolved);
        var conflict = Assert.Single(report.Conflicts);
        Assert.Equal("1", conflict.RecordId);
        Assert.Equal("update_conflict", conflict.ConflictType);
        Assert.Equal(["email"], conflict.Fields);
        Assert.Equal("last_write_wins", conflict.Resolution);
        Assert.Equal("ann@crm", conflict.SourceValues["crm"]["email"]);
        Assert.Equal("ann@shop", conflict.SourceValues["shop"]["email"]);
        Assert.Equal("ann@shop", conflict.ResolvedValue["email"]);
        Assert.NotNull(conflict.ResolvedAt);

        // The spec's Conflict Resolution Report is in the state store's append-only log, with its resolution.
        await using var store = await _workspace.OpenStateAsync();
        var log = await store.ReadConflictLogAsync(null, 100, CancellationToken.None);
        Assert.Equal(["detected", "resolved"], log.Select(e => e.Kind));
        using var detected = JsonDocument.Parse(log[0].Json);
        var root = detected.RootElement;
        foreach (var property in new[] { "conflict_id", "record_id", "conflict_type", "detected_at", "conflicting_fields", "sources", "resolution" })
        {
            Assert.True(root.TryGetProperty(property, out _), $"the conflict record lacks '{property}'");
        }

        Assert.Equal("system", root.GetProperty("resolution").GetProperty("resolved_by").GetString());
        Assert.Empty(await store.ReadConflictReviewsAsync(null, 10, CancellationToken.None));

        // The run's stored summary counts the conflict; its details live in the log (and the report file).
        using var summary = JsonDocument.Parse((await store.ReadRunsAsync(1, CancellationToken.None))[0].ReportJson);
        Assert.Equal(1, summary.RootElement.GetProperty("statistics").GetProperty("conflicts_detected").GetInt32());
        Assert.Equal(0, summary.RootElement.GetProperty("conflicts").GetArrayLength());

        // A replayed pass changes nothing and detects nothing again.
        var again = await RunAsync();
        Assert.Equal(0, SyncWorkspace.Writes(again));
        Assert.Equal(0, again.Statistics.ConflictsDetected);
    }

    [Fact]
    public async Task Source_wins_with_source_priority_keeps_the_preferred_sources_value_even_when_older()
    {
        SeedSynced();
        var yaml = Yaml("{default_strategy: last_write_wins, strategies: [{field: email, strategy: source_wins, source_priority: [crm, shop]}]}");
        await RunAsync(yaml);
        Upsert(_crm, 1, "Ann", "ann@crm", "111", 50);
        Upsert(_shop, 1, "Ann", "ann@shop", "111", 5);

        var report = await RunAsync(yaml);

        Assert.Equal("ann@crm", Dest("email"));
        var conflict = Assert.Single(report.Conflicts);
        Assert.Equal("source_wins", conflict.Resolution);
    }

    [Fact]
    public async Task Manual_review_holds_the_destination_value_collects_later_updates_and_applies_the_reviewers_decision()
    {
        SeedSynced();
        var yaml = Yaml("{default_strategy: last_write_wins, strategies: [{field: email, strategy: manual_review}]}");
        await RunAsync(yaml);
        Upsert(_crm, 1, "Ann", "ann@crm", "111", 40);
        Upsert(_shop, 1, "Ann B.", "ann@shop", "111", 30);

        var report = await RunAsync(yaml);

        // The first source to apply wrote on common ground; the second one's write conflicts with it and is held:
        // the destination keeps what it holds.
        var held = Assert.IsType<string>(Dest("email"));
        Assert.Contains(held, new[] { "ann@crm", "ann@shop" });
        Assert.Equal("Ann B.", Dest("name"));
        Assert.Equal(1, report.Statistics.ConflictsDetected);
        Assert.Equal(0, report.Statistics.ConflictsResolved);
        Assert.Contains(report.Warnings, w => w.Contains("wait for manual review", StringComparison.Ordinal));
        await using (var store = await _workspace.OpenStateAsync())
        {
            var review = Assert.Single(await store.ReadConflictReviewsAsync(null, 10, CancellationToken.None));
            Assert.Equal("1", review.RecordId);
        }

        // More updates to the held record queue behind the decision: the destination keeps its value.
        Upsert(_shop, 1, "Ann B.", "ann@shop2", "111", 10);
        await RunAsync(yaml);
        Assert.Equal(held, Dest("email"));
        string conflictId;
        await using (var store = await _workspace.OpenStateAsync())
        {
            conflictId = Assert.Single(await store.ReadConflictReviewsAsync(null, 10, CancellationToken.None)).ConflictId;
            Assert.Contains(await store.ReadConflictLogAsync(conflictId, 100, CancellationToken.None), e => e.Kind == "held_update");
        }

        var resolved = await ResolveAsync(yaml, conflictId, new ReviewDecision("shop", new Dictionary<string, string>(), new Dictionary<string, object?>()));

        Assert.NotNull(resolved);
        Assert.Equal("ann@shop2", Dest("email"));
        Assert.Equal("ann@shop2", resolved.Resolution.ResolvedValues["email"]);
        await using (var store = await _workspace.OpenStateAsync())
        {
            Assert.Empty(await store.ReadConflictReviewsAsync(null, 10, CancellationToken.None));
            var history = await store.ReadConflictLogAsync(conflictId, 100, CancellationToken.None);
            Assert.Equal("resolved", history[^1].Kind);
            using var entry = System.Text.Json.JsonDocument.Parse(history[^1].Json);
            Assert.Equal("reviewer", entry.RootElement.GetProperty("resolution").GetProperty("resolved_by").GetString());
        }

        // The decision stands: the next pass writes nothing.
        Assert.Equal(0, SyncWorkspace.Writes(await RunAsync(yaml)));
        Assert.Equal("ann@shop2", Dest("email"));
    }

    [Fact]
    public async Task A_review_left_by_a_source_removed_from_the_configuration_can_still_be_decided()
    {
        var yaml = Yaml("{default_strategy: manual_review}");
        var conflictId = await HeldEmailConflictAsync(yaml);

        // shop leaves the configuration; the review it (or crm) left behind is still decided, by either candidate.
        const string crmOnly = """
            sync:
              sources:
                - {name: crm, connection: "sqlite:crm.db", tables: [{name: customers, soft_delete: {field: deleted_at}}]}
              destination: {connection: "sqlite:dest.db"}
            conflict_resolution: {default_strategy: manual_review}
            """;
        var resolved = await ResolveAsync(crmOnly, conflictId, new ReviewDecision("shop", new Dictionary<string, string>(), new Dictionary<string, object?>()));

        Assert.NotNull(resolved);
        Assert.Equal("ann@shop", Dest("email"));
        Assert.Empty(await ReviewsAsync());
    }

    [Fact]
    public async Task A_value_typed_by_the_reviewer_must_be_of_the_fields_kind_or_a_later_change_would_conflict_with_it()
    {
        var yaml = Yaml("{default_strategy: manual_review}");
        var conflictId = await HeldEmailConflictAsync(yaml);

        // email is TEXT: the destination would store 7 as '7', and the record base would keep the number, so the next
        // change of the field would read as an edit out-of-band and conflict with the "destination".
        var wrongKind = await Assert.ThrowsAsync<ReviewDecisionException>(
            () => ResolveAsync(yaml, conflictId, new ReviewDecision(null, new Dictionary<string, string>(), new Dictionary<string, object?> { ["email"] = 7L })));
        Assert.Contains("email", wrongKind.Message, StringComparison.Ordinal);
        Assert.Single(await ReviewsAsync());

        Assert.NotNull(await ResolveAsync(yaml, conflictId, new ReviewDecision(null, new Dictionary<string, string>(), new Dictionary<string, object?> { ["email"] = "7" })));
        Assert.Equal("7", Dest("email"));

        // A value of the field's kind is common ground: a source changing it later writes it plainly.
        Upsert(_crm, 1, "Ann", "ann@crm2", "111", 5);
        var report = await RunAsync(yaml);
        Assert.Equal(0, report.Statistics.ConflictsDetected);
        Assert.Equal("ann@crm2", Dest("email"));
    }

    [Fact]
    public async Task A_decision_for_a_field_the_conflict_does_not_hold_is_refused_naming_that_field()
    {
        var yaml = Yaml("{default_strategy: manual_review}");
        var conflictId = await HeldEmailConflictAsync(yaml);

        // A typo in --field: the error is about the typo, not about the held field it left undecided.
        var typo = await Assert.ThrowsAsync<ReviewDecisionException>(
            () => ResolveAsync(yaml, conflictId, new ReviewDecision(null, new Dictionary<string, string> { ["emial"] = "crm" }, new Dictionary<string, object?>())));

        Assert.Contains("holds no field emial", typo.Message, StringComparison.Ordinal);
        Assert.Single(await ReviewsAsync());
    }

    /// <summary>Both sources change record 1's email after a synced start: the conflict held for review, by its id.</summary>
    private async Task<string> HeldEmailConflictAsync(string yaml)
    {
        SeedSynced();
        await RunAsync(yaml);
        Upsert(_crm, 1, "Ann", "ann@crm", "111", 40);
        Upsert(_shop, 1, "Ann", "ann@shop", "111", 30);
        await RunAsync(yaml);
        return Assert.Single(await ReviewsAsync()).ConflictId;
    }

    private async Task<IReadOnlyList<DeltaSync.Core.State.ConflictReview>> ReviewsAsync()
    {
        await using var store = await _workspace.OpenStateAsync();
        return await store.ReadConflictReviewsAsync(null, 10, CancellationToken.None);
    }

    [Fact]
    public async Task A_delete_racing_an_update_is_a_delete_conflict_decided_by_last_write()
    {
        SeedSynced();
        await RunAsync();
        Upsert(_crm, 1, "Ann", "ann@old", "111", 40, deleted: true);
        Upsert(_shop, 1, "Ann", "ann@shop", "111", 10);

        var report = await RunAsync();

        var conflict = Assert.Single(report.Conflicts);
        Assert.Equal("delete_conflict", conflict.ConflictType);
        Assert.True(conflict.SourceValues["crm"].ContainsKey("_deleted"));
        Assert.Equal("ann@shop", Dest("email"));
    }

    [Fact]
    public async Task The_same_key_inserted_by_both_sources_with_different_values_is_an_insert_conflict()
    {
        await RunAsync();
        Upsert(_crm, 9, "Bob", "bob@crm", "900", 40);
        Upsert(_shop, 9, "Bob", "bob@shop", "900", 10);

        var report = await RunAsync();

        var conflict = Assert.Single(report.Conflicts);
        Assert.Equal("insert_conflict", conflict.ConflictType);
        Assert.Equal(["email"], conflict.Fields);
        Assert.Equal("bob@shop", Dest("email", 9));
        Assert.Equal(1L, _workspace.Destination.Count("customers"));
    }

    [Fact]
    public async Task A_destination_edited_out_of_band_is_detected_when_a_source_changes_the_same_field()
    {
        SeedSynced();
        await RunAsync();
        _workspace.Destination.Execute("UPDATE customers SET email = 'ann@dba' WHERE id = 1");
        Upsert(_crm, 1, "Ann", "ann@crm", "111", 10);

        var report = await RunAsync();

        var conflict = Assert.Single(report.Conflicts);
        Assert.Contains("destination", conflict.SourceValues.Keys);
        Assert.Equal("ann@dba", conflict.SourceValues["destination"]["email"]);
        Assert.Equal("ann@crm", conflict.SourceValues["crm"]["email"]);
    }

    [Fact]
    public async Task Record_bases_are_kept_only_for_tables_several_sources_write()
    {
        SeedSynced();
        await RunAsync();
        Assert.True((long)_workspace.Destination.Scalar($"SELECT count(*) FROM {SqliteDestination.RecordsTable} WHERE destination_table = 'customers'")! >= 1);
    }

    [Fact]
    public async Task A_run_leaving_conflicts_for_review_posts_them_to_the_webhook()
    {
        using var listener = new HttpListener();
        int port;
        using (var socket = new TcpListener(IPAddress.Loopback, 0))
        {
            socket.Start();
            port = ((IPEndPoint)socket.LocalEndpoint).Port;
        }

        var prefix = $"http://127.0.0.1:{port}/hooks/";
        listener.Prefixes.Add(prefix);
        listener.Start();
        var received = Task.Run(async () =>
        {
            var context = await listener.GetContextAsync();
            using var reader = new StreamReader(context.Request.InputStream);
            var body = await reader.ReadToEndAsync();
            var authorization = context.Request.Headers["Authorization"];
            context.Response.StatusCode = 204;
            context.Response.Close();
            return (body, authorization);
        });
        SeedSynced();
        var yaml = Yaml("{default_strategy: manual_review, notifications: {webhook: {url: \"" + prefix + "conflicts\", headers: {Authorization: \"Bearer t0ken\"}}}}");
        await RunAsync(yaml);
        Upsert(_crm, 1, "Ann", "ann@crm", "111", 40);
        Upsert(_shop, 1, "Ann", "ann@shop", "111", 30);

        var report = await RunAsync(yaml);

        var (body, authorization) = await received.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("Bearer t0ken", authorization);
        using var payload = JsonDocument.Parse(body);
        Assert.Equal("deltasync.conflicts_need_attention", payload.RootElement.GetProperty("event").GetString());
        Assert.Equal(report.Metadata.SyncId, payload.RootElement.GetProperty("run_id").GetString());
        var conflict = Assert.Single(payload.RootElement.GetProperty("conflicts").EnumerateArray().ToList());
        Assert.Equal("pending_review", conflict.GetProperty("status").GetString());
        Assert.Equal("1", conflict.GetProperty("record_id").GetString());
        Assert.DoesNotContain(report.Warnings, w => w.Contains("webhook could not be notified", StringComparison.Ordinal));
    }

    private async Task<ReviewResolved?> ResolveAsync(string yaml, string conflictId, ReviewDecision decision)
    {
        var config = _workspace.Configure(yaml);
        var connector = new SqliteConnector(_clock);
        await using var store = await _workspace.OpenStateAsync();
        await using var destination = await connector.OpenDestinationAsync(config.Sync.Destination, config, CancellationToken.None);
        var sources = new Dictionary<string, ISource>();
        try
        {
            var resolver = new ConflictReviewResolver(
                config,
                store,
                destination,
                async (plan, ct) =>
                {
                    if (!sources.TryGetValue(plan.SourceName, out var source))
                    {
                        sources[plan.SourceName] = source = await connector.OpenSourceAsync(config.Sync.SourceNamed(plan.SourceName), config, ct);
                    }

                    return await source.DescribeTableAsync(plan.ToTableOptions(), ct);
                },
                _clock);
            return await resolver.ResolveAsync(conflictId, decision, "reviewer", CancellationToken.None);
        }
        finally
        {
            foreach (var source in sources.Values)
            {
                await source.DisposeAsync();
            }
        }
    }

    [Theory]
    [InlineData("sqlite:dest.db")]
    [InlineData("sqlite:link/dest.db")]
    public async Task A_state_store_in_the_destination_file_gets_the_conflict_log_before_the_batch_commits(string state)
    {
        // The batch holds the file's only writer until it commits: a log written beside it would wait for that writer.
        Directory.CreateSymbolicLink(Path.Combine(_workspace.Folder, "link"), _workspace.Folder);
        var yaml = Yaml() + $"\nstate: {{storage: {{type: database, connection: \"{state}\"}}}}\n";
        SeedSynced();
        await RunAsync(yaml);
        Upsert(_crm, 1, "Ann", "ann@crm", "111", 40);
        Upsert(_shop, 1, "Ann", "ann@shop", "111", 10);

        // Blocked behind the batch, the log would wait out the store's busy timeout and fail the table (the run would
        // not complete).
        var report = await RunAsync(yaml);

        Assert.Equal(1, report.Statistics.ConflictsDetected);
        Assert.Equal("ann@shop", Dest("email"));
        Assert.Equal(2L, _workspace.Destination.Scalar("SELECT count(*) FROM conflict_log"));
    }

    [Fact]
    public async Task A_batch_merged_in_several_chunks_detects_every_conflict_and_merges_every_field()
    {
        // 2,500 records in one batch: three chunks, each read while the one before is merged.
        const int Count = 2500;
        var synced = ItemsTable.Timestamp(_clock.Now - Duration.FromSeconds(600));
        foreach (var db in new[] { _crm, _shop })
        {
            db.Execute(
                $"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {Count}) " +
                "INSERT INTO customers (id, name, email, phone, updated_at) SELECT i, 'c' || i, 'e' || i, 'p' || i, $at FROM n",
                ("$at", synced));
        }

        var yaml = Yaml().Replace("destination: {connection: \"sqlite:dest.db\"}", "destination: {connection: \"sqlite:dest.db\"}\n  batch_size: 5000", StringComparison.Ordinal);
        Assert.Equal(0, (await RunAsync(yaml)).Statistics.ConflictsDetected);

        // crm changes every email; shop, later, every tenth email (a conflict it wins) and every seventh phone (no conflict).
        // Non-ASCII text goes through the stored bases (UTF-8) unchanged.
        var crmAt = ItemsTable.Timestamp(_clock.Now + Duration.FromSeconds(10));
        var shopAt = ItemsTable.Timestamp(_clock.Now + Duration.FromSeconds(20));
        _crm.Execute("UPDATE customers SET email = 'crmé' || id, updated_at = $at", ("$at", crmAt));
        _shop.Execute("UPDATE customers SET email = CASE WHEN id % 10 = 0 THEN 'shöp日' || id ELSE email END, phone = CASE WHEN id % 7 = 0 THEN 'shop' || id ELSE phone END, updated_at = $at WHERE id % 10 = 0 OR id % 7 = 0", ("$at", shopAt));
        _clock.Advance(Duration.FromMinutes(1));

        var report = await RunAsync(yaml);

        Assert.Equal(Count / 10, report.Statistics.ConflictsDetected);
        Assert.Equal(Count / 10, report.Conflicts.Count);
        Assert.All(report.Conflicts, c => Assert.Equal(["email"], c.Fields));
        Assert.Equal((long)Count, _workspace.Destination.Count("customers"));
        Assert.Equal(0L, _workspace.Destination.Scalar(
            "SELECT count(*) FROM customers WHERE email IS NOT CASE WHEN id % 10 = 0 THEN 'shöp日' || id ELSE 'crmé' || id END " +
            "OR phone IS NOT CASE WHEN id % 7 = 0 THEN 'shop' || id ELSE 'p' || id END"));
    }

    public void Dispose() => _workspace.Dispose();
}
