using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using DeltaSync.Core.Config;
using DeltaSync.Core.Conflicts;
using Microsoft.Extensions.Logging;
using static DeltaSync.Core.Tests.Conflicts.ConflictFixtures;

namespace DeltaSync.Core.Tests.Conflicts;

public sealed class ConflictNotifierTests : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly string _prefix;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly RecordingLogger _logger = new();

    public ConflictNotifierTests()
    {
        _prefix = $"http://127.0.0.1:{FreePort()}/hooks/";
        _listener.Prefixes.Add(_prefix);
        _listener.Start();
    }

    public void Dispose()
    {
        _listener.Close();
        _http.Dispose();
    }

    [Fact]
    public async Task Conflicts_waiting_for_review_are_posted_to_the_webhook_after_a_503_and_logged_as_a_warning()
    {
        var options = new ConflictNotificationOptions(
            new WebhookOptions(new Uri(_prefix + "conflicts?token=s3cret"), new Dictionary<string, string> { ["Authorization"] = "Bearer hunter2" }, 3),
            ThresholdPerRun: null);
        var notifier = new ConflictNotifier(_http, options, _logger, TimeSpan.FromMilliseconds(10));
        var server = ServeAsync(HttpStatusCode.ServiceUnavailable, HttpStatusCode.OK);

        var result = await notifier.NotifyAsync("shop", "run_1", PendingConflicts(), CancellationToken.None);
        var requests = await server;

        Assert.Equal((true, true, 2, 200), (result.Needed, result.Delivered, result.Attempts, result.StatusCode));
        Assert.Equal(2, requests.Count);
        Assert.All(requests, r => Assert.Equal(("POST", "Bearer hunter2", "/hooks/conflicts"), (r.Method, r.Authorization, r.Path)));
        using var payload = JsonDocument.Parse(requests[1].Body);
        Assert.Equal("deltasync.conflicts_need_attention", payload.RootElement.GetProperty("event").GetString());
        Assert.Equal(("shop", "run_1", 1), (payload.RootElement.GetProperty("sync").GetString(), payload.RootElement.GetProperty("run_id").GetString(), payload.RootElement.GetProperty("pending_review").GetInt32()));
        var conflict = Assert.Single(payload.RootElement.GetProperty("conflicts").EnumerateArray().ToList());
        Assert.Equal("pending_review", conflict.GetProperty("status").GetString());

        var warning = Assert.Single(_logger.Entries, e => e.Level == LogLevel.Warning);
        Assert.Contains("1 waiting for manual review", warning.Message, StringComparison.Ordinal);
        Assert.Equal("shop", warning.State["Sync"]);
        Assert.All(_logger.Entries, e => Assert.DoesNotContain("s3cret", e.Message, StringComparison.Ordinal));
        Assert.All(_logger.Entries, e => Assert.DoesNotContain("hunter2", e.Message, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_webhook_that_keeps_failing_is_a_warning_after_max_attempts()
    {
        var options = new ConflictNotificationOptions(new WebhookOptions(new Uri(_prefix), new Dictionary<string, string>(), 2), null);
        var notifier = new ConflictNotifier(_http, options, _logger, TimeSpan.FromMilliseconds(10));
        var server = ServeAsync(HttpStatusCode.InternalServerError, HttpStatusCode.BadGateway);

        var result = await notifier.NotifyAsync("shop", "run_2", PendingConflicts(), CancellationToken.None);
        await server;

        Assert.Equal((true, false, 2, 502), (result.Needed, result.Delivered, result.Attempts, result.StatusCode));
        Assert.Contains(_logger.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("not delivered after 2 attempt(s)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Conflicts_resolved_automatically_below_the_threshold_need_no_notification()
    {
        var options = new ConflictNotificationOptions(new WebhookOptions(new Uri(_prefix), new Dictionary<string, string>(), 1), ThresholdPerRun: 5);
        var notifier = new ConflictNotifier(_http, options, _logger, TimeSpan.FromMilliseconds(10));
        var outcome = Engine("last_write_wins").Merge(Synced(), [Upsert("crm", 10, 1, ("email", "a@x")), Upsert("shop", 20, 1, ("email", "b@x"))], Now);

        var result = await notifier.NotifyAsync("shop", "run_3", outcome.Conflicts.Select(ConflictRecords.ToRecord).ToList(), CancellationToken.None);

        Assert.Equal(NotificationResult.NotNeeded, result);
        Assert.Empty(_logger.Entries);
    }

    [Fact]
    public void More_conflicts_than_the_threshold_need_attention()
    {
        var records = Enumerable.Range(0, 3).Select(i => ConflictRecords.ToRecord(Assert.Single(
            Engine("last_write_wins").Merge(Synced(), [Upsert("crm", 10, 1, ("email", $"a{i}@x")), Upsert("shop", 20, 1, ("email", "b@x"))], Now).Conflicts))).ToList();

        Assert.Null(ConflictNotifier.AttentionReason(records, new ConflictNotificationOptions(null, 3)));
        Assert.Equal("3 conflicts exceed threshold_per_run 2", ConflictNotifier.AttentionReason(records, new ConflictNotificationOptions(null, 2)));
    }

    private static List<ConflictRecord> PendingConflicts() =>
        Engine("manual_review").Merge(Synced(), [Upsert("crm", 10, 1, ("email", "a@x")), Upsert("shop", 20, 1, ("email", "b@x"))], Now)
            .Conflicts.Select(ConflictRecords.ToRecord).ToList();

    /// <summary>Answers one request per status, in order, and returns what it received.</summary>
    private async Task<List<ReceivedRequest>> ServeAsync(params HttpStatusCode[] statuses)
    {
        var received = new List<ReceivedRequest>();
        foreach (var status in statuses)
        {
            var context = await _listener.GetContextAsync();
            using var reader = new StreamReader(context.Request.InputStream);
            received.Add(new ReceivedRequest(context.Request.HttpMethod, context.Request.Headers["Authorization"], context.Request.Url!.AbsolutePath, await reader.ReadToEndAsync()));
            context.Response.StatusCode = (int)status;
            context.Response.Close();
        }

        return received;
    }

    private static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }

    private sealed record ReceivedRequest(string Method, string? Authorization, string Path, string Body);

    private sealed class RecordingLogger : ILogger
    {
        public List<(LogLevel Level, string Message, Dictionary<string, object?> State)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            var fields = state is IEnumerable<KeyValuePair<string, object?>> pairs ? pairs.ToDictionary(p => p.Key, p => p.Value) : [];
            lock (Entries)
            {
                Entries.Add((logLevel, formatter(state, exception), fields));
            }
        }
    }
}
