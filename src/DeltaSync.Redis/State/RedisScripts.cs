namespace DeltaSync.Redis.State;

/// <summary>
/// The Lua scripts behind every check-then-write of <see cref="RedisStateStore"/>: Redis runs a script atomically, so
/// "is this version free / does this worker still hold the lease" and the write see the same state. Every key a
/// script touches is passed in <c>KEYS</c> (the store's key prefix is added by the client). Lease times are the
/// server's clock (<c>TIME</c>), so workers with skewed clocks agree on expiry.
/// </summary>
/// <remarks>
/// Numbers written back are formatted with <c>%.0f</c>: Redis turns a Lua number argument into text in a way that may
/// use exponent notation. Strings are compared byte by byte, not with Lua's <c>&lt;</c>, which uses the server's
/// collation locale.
/// </remarks>
internal static class RedisScripts
{
    private const string Now = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        """;

    /// <summary>KEYS: checkpoints, streams. ARGV: version, member, stream. 1 when appended, 0 when the version exists.</summary>
    public const string Append = """
        if redis.call('ZCOUNT', KEYS[1], ARGV[1], ARGV[1]) > 0 then return 0 end
        redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
        redis.call('SADD', KEYS[2], ARGV[3])
        return 1
        """;

    /// <summary>
    /// KEYS: checkpoints, streams, lease. ARGV: version, member, stream, owner, epoch. {1} when appended, {0} when the
    /// version exists, {-1, owner, epoch, expires_at_ms, now} when the lease is not the writer's at that epoch.
    /// </summary>
    public const string AppendFenced = Now + """

        local lease = redis.call('HMGET', KEYS[3], 'owner', 'epoch', 'expires_at_ms')
        if lease[1] ~= ARGV[4] or lease[2] ~= ARGV[5] then
          return {-1, lease[1] or '', lease[2] or '0', lease[3] or '0', now}
        end
        if redis.call('ZCOUNT', KEYS[1], ARGV[1], ARGV[1]) > 0 then return {0} end
        redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
        redis.call('SADD', KEYS[2], ARGV[3])
        return {1}
        """;

    /// <summary>KEYS: checkpoints, streams. ARGV: stream.</summary>
    public const string DeleteStream = """
        redis.call('DEL', KEYS[1])
        redis.call('SREM', KEYS[2], ARGV[1])
        return 1
        """;

    /// <summary>
    /// KEYS: records, failures, attempts, ranks, next id, order, then each letter's stream order. ARGV, five per letter:
    /// dedupe key (hex), record JSON, failure JSON, attempts, failed-at (sortable). An entry already queued keeps its
    /// record and id, adds the attempts, takes the new failure and the later failed-at.
    /// </summary>
    public const string AddDeadLetters = """
        local function later(a, b)
          for i = 1, math.min(#a, #b) do
            local x, y = string.byte(a, i), string.byte(b, i)
            if x ~= y then return x > y end
          end
          return #a > #b
        end
        for i = 1, #KEYS - 6 do
          local base = (i - 1) * 5
          local key, failed = ARGV[base + 1], ARGV[base + 5]
          local order = KEYS[6 + i]
          local rank = redis.call('HGET', KEYS[4], key)
          local id
          if rank then
            local bar = string.find(rank, '|', 1, true)
            local old = string.sub(rank, 1, bar - 1)
            if later(old, failed) then failed = old end
            id = string.sub(rank, bar + 1, bar + 19)
            redis.call('ZREM', KEYS[6], rank)
            redis.call('ZREM', order, rank)
          else
            id = string.format('%019.0f', redis.call('INCR', KEYS[5]))
            redis.call('HSET', KEYS[1], key, ARGV[base + 2])
          end
          rank = failed .. '|' .. id .. '|' .. key
          redis.call('HSET', KEYS[4], key, rank)
          redis.call('HSET', KEYS[2], key, ARGV[base + 3])
          redis.call('HINCRBY', KEYS[3], key, ARGV[base + 4])
          redis.call('ZADD', KEYS[6], 0, rank)
          redis.call('ZADD', order, 0, rank)
        end
        return #KEYS - 6
        """;

    /// <summary>
    /// KEYS: order (all, or one stream's), records, failures, attempts. ARGV: limit. Oldest first (failed-at, then
    /// the order they were first queued): record, failure, attempts, failed-at for each.
    /// </summary>
    public const string ReadDeadLetters = """
        local ranks = redis.call('ZRANGEBYLEX', KEYS[1], '-', '+', 'LIMIT', 0, ARGV[1])
        local out = {}
        for _, rank in ipairs(ranks) do
          local key = string.sub(rank, -64)
          out[#out + 1] = redis.call('HGET', KEYS[2], key)
          out[#out + 1] = redis.call('HGET', KEYS[3], key)
          out[#out + 1] = redis.call('HGET', KEYS[4], key)
          out[#out + 1] = string.sub(rank, 1, string.find(rank, '|', 1, true) - 1)
        end
        return out
        """;

    /// <summary>KEYS: records, failures, attempts, ranks, order, then each letter's stream order. ARGV: dedupe keys. Returns how many were queued.</summary>
    public const string RemoveDeadLetters = """
        local removed = 0
        for i = 1, #ARGV do
          local rank = redis.call('HGET', KEYS[4], ARGV[i])
          if rank then
            redis.call('ZREM', KEYS[5], rank)
            redis.call('ZREM', KEYS[5 + i], rank)
            for k = 1, 4 do redis.call('HDEL', KEYS[k], ARGV[i]) end
            removed = removed + 1
          end
        end
        return removed
        """;

    /// <summary>
    /// KEYS: runs, ranks, order. ARGV: run id, rank (completed-at sortable, '|', run id), run JSON, how many runs to keep.
    /// Runs beyond the newest ARGV[4] are removed.
    /// </summary>
    public const string AppendRun = """
        local old = redis.call('HGET', KEYS[2], ARGV[1])
        if old then redis.call('ZREM', KEYS[3], old) end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
        redis.call('ZADD', KEYS[3], 0, ARGV[2])
        local extra = redis.call('ZREVRANGEBYLEX', KEYS[3], '+', '-', 'LIMIT', tonumber(ARGV[4]), -1)
        for _, rank in ipairs(extra) do
          local id = string.sub(rank, string.find(rank, '|', 1, true) + 1)
          redis.call('HDEL', KEYS[1], id)
          redis.call('HDEL', KEYS[2], id)
          redis.call('ZREM', KEYS[3], rank)
        end
        return 1
        """;

    /// <summary>KEYS: runs, order. ARGV: limit. The newest runs' JSON, newest first (ties by run id, descending).</summary>
    public const string ReadRuns = """
        local ranks = redis.call('ZREVRANGEBYLEX', KEYS[2], '+', '-', 'LIMIT', 0, ARGV[1])
        local out = {}
        for _, rank in ipairs(ranks) do
          out[#out + 1] = redis.call('HGET', KEYS[1], string.sub(rank, string.find(rank, '|', 1, true) + 1))
        end
        return out
        """;

    /// <summary>
    /// KEYS: lease. ARGV: owner, ttl (ms). {1, epoch} when taken or extended (a new holder raises the epoch), or
    /// {0, owner, epoch, expires_at_ms} when another owner holds it and it has not expired.
    /// </summary>
    public const string AcquireLease = Now + """

        local lease = redis.call('HMGET', KEYS[1], 'owner', 'epoch', 'expires_at_ms')
        local epoch
        if not lease[1] then
          epoch = 1
          redis.call('HSET', KEYS[1], 'epoch', '1')
        else
          local live = tonumber(lease[3]) > now
          if lease[1] == ARGV[1] and live then
            epoch = tonumber(lease[2])
          elseif lease[1] == ARGV[1] or not live then
            epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
          else
            return {0, lease[1], tonumber(lease[2]), tonumber(lease[3])}
          end
        end
        redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'expires_at_ms', string.format('%.0f', now + tonumber(ARGV[2])))
        return {1, epoch}
        """;

    /// <summary>KEYS: lease. ARGV: stale owner, owner, ttl (ms). The new epoch, or nil when the stale owner no longer holds it.</summary>
    public const string TakeOverLease = Now + """

        if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return false end
        local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
        redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'expires_at_ms', string.format('%.0f', now + tonumber(ARGV[3])))
        return epoch
        """;

    /// <summary>
    /// KEYS: lease. ARGV: owner, epoch, ttl (ms). {1} when extended (even after expiry, while nobody took it), else
    /// {0, owner, epoch, expires_at_ms, now}.
    /// </summary>
    public const string RenewLease = Now + """

        local lease = redis.call('HMGET', KEYS[1], 'owner', 'epoch', 'expires_at_ms')
        if lease[1] == ARGV[1] and lease[2] == ARGV[2] then
          redis.call('HSET', KEYS[1], 'expires_at_ms', string.format('%.0f', now + tonumber(ARGV[3])))
          return {1}
        end
        return {0, lease[1] or '', lease[2] or '0', lease[3] or '0', now}
        """;

    /// <summary>
    /// KEYS: lease. ARGV: owner, epoch, floor. {1, new epoch} when the owner holds the lease at that epoch (raised above
    /// the floor when it is not already), else {0, owner, epoch, expires_at_ms, now}.
    /// </summary>
    public const string RaiseEpoch = Now + """

        local lease = redis.call('HMGET', KEYS[1], 'owner', 'epoch', 'expires_at_ms')
        if lease[1] == ARGV[1] and lease[2] == ARGV[2] then
          local raised = math.max(tonumber(lease[2]), tonumber(ARGV[3]) + 1)
          redis.call('HSET', KEYS[1], 'epoch', string.format('%.0f', raised))
          return {1, raised}
        end
        return {0, lease[1] or '', lease[2] or '0', lease[3] or '0', now}
        """;

    /// <summary>
    /// KEYS: lease. ARGV: owner, epoch. Expires the lease now when the owner still holds it at that epoch: expired
    /// rather than deleted, so the next owner's epoch is higher than every epoch handed out before.
    /// </summary>
    public const string ReleaseLease = Now + """

        local lease = redis.call('HMGET', KEYS[1], 'owner', 'epoch', 'expires_at_ms')
        if lease[1] == ARGV[1] and lease[2] == ARGV[2] and tonumber(lease[3]) > now then
          redis.call('HSET', KEYS[1], 'expires_at_ms', string.format('%.0f', now))
        end
        return 1
        """;
}
