using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using DeltaSync.Core.Config;
using DeltaSync.Core.Diagnostics;
using DeltaSync.Core.Reporting;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace DeltaSync.Core.Conflicts;

/// <summary>
/// Alerts on conflicts that need attention (spec: "Conflict Notification"): when a run leaves conflicts waiting for
/// manual review, or has more than <c>threshold_per_run</c> of them, it logs a structured warning and POSTs a JSON
/// payload to the configured webhook. Network errors, timeouts, 408, 429 and 5xx are tried again (Polly, exponential
/// back-off with jitter) up to <c>max_attempts</c> in all. Header values and the URL's query and user info are never
/// logged (they often carry tokens). A webhook that cannot be reached is a warning, never a failed run.
/// </summary>
public sealed class ConflictNotifier
{
    private readonly HttpClient _http;
    private readonly ConflictNotificationOptions _options;
    private readonly ILogger _logger;
    private readonly TimeSpan _firstRetryDelay;

    /// <summary>A notifier posting through <paramref name="http"/> (its timeout bounds each attempt).</summary>
    public ConflictNotifier(HttpClient http, ConflictNotificationOptions options, ILogger logger)
        : this(http, options, logger, TimeSpan.FromSeconds(1))
    {
    }

    internal ConflictNotifier(HttpClient http, ConflictNotificationOptions options, ILogger logger, TimeSpan firstRetryDelay)
    {
        _http = http ?? throw new ArgumentNullException(nameof(http));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _firstRetryDelay = firstRetryDelay;
    }

    /// <summary>Why a run's conflicts need attention, or null when they do not.</summary>
    public static string? AttentionReason(IReadOnlyCollection<ConflictRecord> conflicts, ConflictNotificationOptions? options)
    {
        ArgumentNullException.ThrowIfNull(conflicts);
        var pending = conflicts.Count(c => c.Status == "pending_review");
        var reasons = new List<string>();
        if (pending > 0)
        {
            reasons.Add($"{pending} conflict(s) wait for manual review");
        }

        if (options?.ThresholdPerRun is { } threshold && conflicts.Count > threshold)
        {
            reasons.Add($"{conflicts.Count} conflicts exceed threshold_per_run {threshold}");
        }

        return reasons.Count == 0 ? null : string.Join("; ", reasons);
    }

    /// <summary>Notifies about <paramref name="conflicts"/> (a run's) when they need attention; does nothing otherwise.</summary>
    public async Task<NotificationResult> NotifyAsync(string syncName, string runId, IReadOnlyList<ConflictRecord> conflicts, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(conflicts);
        var reason = AttentionReason(conflicts, _options);
        if (reason is null)
        {
            return NotificationResult.NotNeeded;
        }

        var pending = conflicts.Count(c => c.Status == "pending_review");
        var webhook = _options.Webhook;
        var shownUrl = webhook is null ? "(none)" : Redact(webhook.Url);
        Log.ConflictsNeedAttention(_logger, syncName, runId, conflicts.Count, pending, reason, shownUrl);
        if (webhook is null)
        {
            return new NotificationResult(true, false, 0, null, reason);
        }

        var payload = JsonSerializer.Serialize(
            new WebhookPayload("deltasync.conflicts_need_attention", syncName, runId, reason, conflicts.Count, pending, _options.ThresholdPerRun, conflicts),
            SyncReport.JsonOptions);
        var attempts = 0;
        var pipeline = Pipeline(webhook, syncName, runId, shownUrl);
        try
        {
            using var response = await pipeline.ExecuteAsync(
                async ct =>
                {
                    attempts++;
                    using var request = new HttpRequestMessage(HttpMethod.Post, webhook.Url)
                    {
                        Content = new StringContent(payload, Encoding.UTF8, "application/json"),
                    };
                    foreach (var (name, value) in webhook.Headers)
                    {
                        if (!request.Headers.TryAddWithoutValidation(name, value))
                        {
                            request.Content.Headers.TryAddWithoutValidation(name, value);
                        }
                    }

                    return await _http.SendAsync(request, ct).ConfigureAwait(false);
                },
                cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                return new NotificationResult(true, true, attempts, (int)response.StatusCode, reason);
            }

            Log.ConflictWebhookFailed(_logger, syncName, runId, shownUrl, attempts, $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
            return new NotificationResult(true, false, attempts, (int)response.StatusCode, reason);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            Log.ConflictWebhookFailed(_logger, syncName, runId, shownUrl, attempts, Describe(e));
            return new NotificationResult(true, false, attempts, null, reason);
        }
    }

    /// <summary>The address without user info, query or fragment: what logs may show.</summary>
    internal static string Redact(Uri url) => url.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped);

    private ResiliencePipeline<HttpResponseMessage> Pipeline(WebhookOptions webhook, string syncName, string runId, string shownUrl)
    {
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage>();
        if (webhook.MaxAttempts > 1)
        {
            builder.AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                ShouldHandle = new PredicateBuilder<HttpResponseMessage>()
                    .Handle<HttpRequestException>()
                    .Handle<TaskCanceledException>()
                    .HandleResult(r => IsTransient(r.StatusCode)),
                MaxRetryAttempts = webhook.MaxAttempts - 1,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = _firstRetryDelay,
                MaxDelay = TimeSpan.FromSeconds(30),
                OnRetry = args =>
                {
                    var error = args.Outcome.Exception is { } e ? Describe(e) : $"HTTP {(int)args.Outcome.Result!.StatusCode}";
                    Log.ConflictWebhookRetry(_logger, syncName, runId, shownUrl, args.AttemptNumber + 1, error, args.RetryDelay.TotalMilliseconds);
                    args.Outcome.Result?.Dispose();
                    return ValueTask.CompletedTask;
                },
            });
        }

        return builder.Build();
    }

    private static bool IsTransient(HttpStatusCode status) =>
        status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests || (int)status >= 500;

    // HttpRequestException messages may quote the address with its query: keep the kind of failure only.
    private static string Describe(Exception e) => e switch
    {
        HttpRequestException { HttpRequestError: var kind } => $"request failed ({kind})",
        TaskCanceledException => "timed out",
        _ => e.GetType().Name,
    };

    private sealed record WebhookPayload(
        [property: JsonPropertyName("event")] string Event,
        [property: JsonPropertyName("sync")] string Sync,
        [property: JsonPropertyName("run_id")] string RunId,
        [property: JsonPropertyName("reason")] string Reason,
        [property: JsonPropertyName("conflicts_detected")] int ConflictsDetected,
        [property: JsonPropertyName("pending_review")] int PendingReview,
        [property: JsonPropertyName("threshold_per_run")] int? ThresholdPerRun,
        [property: JsonPropertyName("conflicts")] IReadOnlyList<ConflictRecord> Conflicts);
}

/// <summary>What a notification did: whether it was needed, delivered, in how many attempts, the last status and why it was needed.</summary>
public sealed record NotificationResult(bool Needed, bool Delivered, int Attempts, int? StatusCode, string? Reason)
{
    public static NotificationResult NotNeeded { get; } = new(false, false, 0, null, null);
}
