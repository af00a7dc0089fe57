using Npgsql;
using NodaTime;

namespace DeltaSync.Postgres.Capture;

/// <summary>
/// What a cursor may safely pass (DESIGN.md, invariant 4, made commit-aware). Observed <em>before</em> a pass takes its
/// snapshot: the server's time and the start of the oldest transaction still open in this database. Any transaction the
/// snapshot cannot see either was open then (so it started at or after <see cref="Bound"/>) or started later; its
/// <c>now()</c> timestamps and the sequence values it takes are therefore no older than the bound. A cursor kept at
/// or below the bound never skips a row that commits after the pass, however long its transaction stays open.
/// </summary>
/// <param name="Bound">The earlier of the server's statement time and the oldest open transaction's start.</param>
/// <param name="HiddenSessions">
/// Sessions of other roles whose transaction start this role may not see (PostgreSQL hides their backend_type as well, so
/// they are told from background processes by having a role).
/// </param>
internal readonly record struct CommitHorizon(Instant Bound, long HiddenSessions, string SessionTimeZone)
{
    /// <summary>Our own capture sessions only read; they never hold back a cursor.</summary>
    public const string CaptureApplicationName = "deltasync capture";

    private const string Sql = """
        SELECT statement_timestamp(),
               (SELECT min(xact_start) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
                   AND xact_start IS NOT NULL AND coalesce(application_name, '') <> 'deltasync capture'),
               (SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND query = '<insufficient privilege>' AND usesysid IS NOT NULL),
               current_setting('TimeZone')
        """;

    public static async Task<CommitHorizon> ObserveAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(Sql, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var now = Instant.FromDateTimeUtc(reader.GetFieldValue<DateTime>(0));
        var bound = now;
        if (!reader.IsDBNull(1))
        {
            var oldest = Instant.FromDateTimeUtc(reader.GetFieldValue<DateTime>(1));
            if (oldest < bound)
            {
                bound = oldest;
            }
        }

        return new CommitHorizon(bound, reader.GetInt64(2), reader.GetString(3));
    }

    /// <summary>The report's warning when other roles' sessions are invisible (only said when there are some).</summary>
    public string? Warning(string table, string user) => HiddenSessions == 0
        ? null
        : $"'{table}': {HiddenSessions} session(s) of other roles are hidden from '{user}', so transactions they hold open cannot be waited for; rows they commit late are caught only within the tolerance window. GRANT pg_read_all_stats TO {user} to make the cursor commit-aware for them";
}
