import RedisClient

// The Lua scripts behind reliable fetch. Each runs atomically in Redis, which
// is what makes "a job is always in exactly one list" true with any number of
// courier processes. Key names are built from a prefix (the namespace) because
// a script's keys depend on what it finds (queues, owners); like Sidekiq,
// Courier does not support Redis Cluster.
enum Scripts {
    /// Lua shared by the scripts that write the dead set: add, then trim as
    /// Sidekiq's DeadSet#kill does (older than 180 days, beyond 9,999 entries).
    static let addToDeadSet = #"""
        local function addToDeadSet(prefix, score, member, now)
          local dead = prefix .. 'dead'
          redis.call('ZADD', dead, score, member)
          redis.call('ZREMRANGEBYSCORE', dead, '-inf', tonumber(now) - 15552000)
          redis.call('ZREMRANGEBYRANK', dead, 0, -10000)
        end

        """#

    /// One round trip of the dispatcher: apply completed jobs' outcomes, then
    /// move up to N jobs from the queues into this process's in-progress lists.
    ///
    /// ARGV: prefix, identity, maxFetch, mode ("strict"|"weighted"), seed,
    ///       day (UTC yyyy-mm-dd), nowSeconds, queueCount,
    ///       queueCount × (name, weight, allowance; -1 = no cap),
    ///       opCount, opCount × (kind, queue, original, replacement, score).
    /// Op kinds: A ack (processed), F failed without retry entry (processed+failed),
    ///   Q requeue to the queue's head, K the same at a shutdown deadline (processed+failed, as
    ///   Sidekiq counts a force-stopped job), R retry set, D dead set (processed+failed),
    ///   M malformed to the dead set (no stats).
    /// Every op first removes `original` from the in-progress list and does
    /// the rest only if that removed it, so replaying ops after a lost reply
    /// changes nothing.
    /// Returns { {queue, job, queue, job, ...}, {emptyQueue, ...}, appliedOps }.
    static let exchange = RedisScript(
        name: "courier-exchange",
        source: addToDeadSet + #"""
            local prefix, identity = ARGV[1], ARGV[2]
            local maxFetch, mode, seed = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
            local day, now = ARGV[6], ARGV[7]
            local nq = tonumber(ARGV[8])
            local wipPrefix = prefix .. 'courier:wip:' .. identity .. ':'
            local names, weights, allow = {}, {}, {}
            local i = 9
            for q = 1, nq do
              names[q] = ARGV[i]; weights[q] = tonumber(ARGV[i + 1]); allow[q] = tonumber(ARGV[i + 2])
              i = i + 3
            end
            local nops = tonumber(ARGV[i]); i = i + 1
            local processed, failed, applied = 0, 0, 0
            for o = 1, nops do
              local kind, queue, original, replacement, score = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
              i = i + 5
              -- From the tail: jobs mostly finish in the order they were fetched, and the oldest are there.
              if redis.call('LREM', wipPrefix .. queue, -1, original) == 1 then
                applied = applied + 1
                if kind == 'A' then
                  processed = processed + 1
                elseif kind == 'F' then
                  processed = processed + 1; failed = failed + 1
                elseif kind == 'Q' or kind == 'K' then
                  if kind == 'K' then processed = processed + 1; failed = failed + 1 end
                  redis.call('RPUSH', prefix .. 'queue:' .. queue, original)
                elseif kind == 'R' then
                  processed = processed + 1; failed = failed + 1
                  redis.call('ZADD', prefix .. 'retry', score, replacement)
                elseif kind == 'D' or kind == 'M' then
                  if kind == 'D' then processed = processed + 1; failed = failed + 1 end
                  addToDeadSet(prefix, score, kind == 'M' and original or replacement, now)
                end
              end
            end
            local function bump(name, n)
              if n > 0 then
                redis.call('INCRBY', prefix .. 'stat:' .. name, n)
                local daily = prefix .. 'stat:' .. name .. ':' .. day
                redis.call('INCRBY', daily, n)
                redis.call('EXPIRE', daily, 157680000)
              end
            end
            bump('processed', processed)
            bump('failed', failed)

            local jobs, empty = {}, {}
            local fetched = 0
            if maxFetch > 0 then
              redis.call('SADD', prefix .. 'courier:wip', identity)
              local registered = {}
              local function take(q)
                if not registered[q] then
                  -- Recovery finds in-progress lists through this set. Empty queues too:
                  -- a queue watcher may claim into their lists next (BLMOVE).
                  redis.call('SADD', prefix .. 'courier:wip:' .. identity, names[q])
                  registered[q] = true
                end
                local job = redis.call('RPOPLPUSH', prefix .. 'queue:' .. names[q], wipPrefix .. names[q])
                if job then
                  jobs[#jobs + 1] = names[q]; jobs[#jobs + 1] = job
                  fetched = fetched + 1
                  if allow[q] > 0 then allow[q] = allow[q] - 1 end
                  return true
                end
                empty[#empty + 1] = names[q]
                allow[q] = 0
                return false
              end
              if mode == 'strict' then
                for q = 1, nq do
                  while fetched < maxFetch and allow[q] ~= 0 do
                    if not take(q) then break end
                  end
                end
              else
                -- Weighted: each job picks a queue with probability ∝ weight among the
                -- queues still worth trying (Park–Miller generator, seeded by the caller).
                while fetched < maxFetch do
                  local total = 0
                  for q = 1, nq do if allow[q] ~= 0 then total = total + weights[q] end end
                  if total == 0 then break end
                  seed = (seed * 16807) % 2147483647
                  local r = (seed % total) + 1
                  local pick = 0
                  for q = 1, nq do
                    if allow[q] ~= 0 then
                      r = r - weights[q]
                      if r <= 0 then pick = q; break end
                    end
                  end
                  take(pick)
                end
              end
            end
            return { jobs, empty, applied }
            """#)

    /// Pushes back the in-progress jobs of every process whose heartbeat
    /// (its Sidekiq process hash) has expired, to the head of their queues.
    /// Atomic, so several survivors recover each job exactly once. A job
    /// recovered more than `maxRecoveries` times (within a day) is a poison
    /// pill: it moves into the caller's own in-progress list and is returned,
    /// so the caller sends it to the dead set with the reason.
    ///
    /// ARGV: prefix, identity, maxRecoveries.
    /// Returns { recoveredCount, {queue, job, ...}, {deadIdentity, ...} }.
    static let recoverOrphans = RedisScript(
        name: "courier-recover",
        source: #"""
            local prefix, me, maxRecoveries = ARGV[1], ARGV[2], tonumber(ARGV[3])
            local owners = redis.call('SMEMBERS', prefix .. 'courier:wip')
            local recovered, poison, gone = 0, {}, {}
            for _, owner in ipairs(owners) do
              if owner ~= me and redis.call('EXISTS', prefix .. owner) == 0 then
                gone[#gone + 1] = owner
                local queuesKey = prefix .. 'courier:wip:' .. owner
                for _, queue in ipairs(redis.call('SMEMBERS', queuesKey)) do
                  local wip = queuesKey .. ':' .. queue
                  -- The list's head is the newest fetch; pushing newest first to the
                  -- queue's tail end leaves the oldest job next in line, as it was.
                  while true do
                    local job = redis.call('LPOP', wip)
                    if not job then break end
                    local counter = prefix .. 'courier:recovered:' .. redis.sha1hex(job)
                    local n = redis.call('INCR', counter)
                    redis.call('EXPIRE', counter, 86400)
                    if n > maxRecoveries then
                      redis.call('SADD', prefix .. 'courier:wip:' .. me, queue)
                      redis.call('LPUSH', prefix .. 'courier:wip:' .. me .. ':' .. queue, job)
                      poison[#poison + 1] = queue; poison[#poison + 1] = job
                    else
                      redis.call('RPUSH', prefix .. 'queue:' .. queue, job)
                      recovered = recovered + 1
                    end
                  end
                  redis.call('SADD', prefix .. 'queues', queue)
                end
                redis.call('DEL', queuesKey)
                redis.call('SREM', prefix .. 'courier:wip', owner)
              end
            end
            return { recovered, poison, gone }
            """#)

    /// After a lost reply this process cannot know whether its last fetch
    /// ran: any job in its own in-progress lists that it is not running goes
    /// back to the head of its queue.
    ///
    /// ARGV: prefix, identity, then pairs (queue, job) of the jobs it is running.
    /// Returns the number of jobs pushed back.
    static let reconcile = RedisScript(
        name: "courier-reconcile",
        source: #"""
            local prefix, me = ARGV[1], ARGV[2]
            local running = {}
            local i = 3
            while i <= #ARGV do
              local key = ARGV[i] .. '\n' .. ARGV[i + 1]
              running[key] = (running[key] or 0) + 1
              i = i + 2
            end
            local returned = 0
            for _, queue in ipairs(redis.call('SMEMBERS', prefix .. 'courier:wip:' .. me)) do
              local wip = prefix .. 'courier:wip:' .. me .. ':' .. queue
              for _, job in ipairs(redis.call('LRANGE', wip, 0, -1)) do
                local key = queue .. '\n' .. job
                if (running[key] or 0) > 0 then
                  running[key] = running[key] - 1
                else
                  redis.call('LREM', wip, 1, job)
                  redis.call('RPUSH', prefix .. 'queue:' .. queue, job)
                  returned = returned + 1
                end
              end
            end
            return returned
            """#)
}

extension Scripts {
    /// At a clean exit: forget this process's in-progress registry if every
    /// list is empty (anything left stays for recovery by a survivor).
    /// ARGV: prefix, identity. Returns jobs still held (0 when retired).
    static let retire = RedisScript(
        name: "courier-retire",
        source: #"""
            local prefix, me = ARGV[1], ARGV[2]
            local queuesKey = prefix .. 'courier:wip:' .. me
            local held = 0
            for _, queue in ipairs(redis.call('SMEMBERS', queuesKey)) do
              held = held + redis.call('LLEN', queuesKey .. ':' .. queue)
            end
            if held == 0 then
              redis.call('DEL', queuesKey)
              redis.call('SREM', prefix .. 'courier:wip', me)
            end
            return held
            """#)
}
