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

    /// Lua shared by the scripts that end concurrent limiters' leases: a lease names the
    /// limiters it holds a slot of in its owner's `courier:leases:IDENTITY` hash.
    static let releaseLease = #"""
        local function releaseLease(prefix, leasesKey, member)
          local held = redis.call('HGET', leasesKey, member)
          if held then
            for name in string.gmatch(held, '%S+') do
              redis.call('ZREM', prefix .. 'courier:limit:' .. name .. ':leases', member)
            end
            redis.call('HDEL', leasesKey, member)
          end
        end

        """#

    /// One round trip of the dispatcher: apply completed jobs' outcomes, then
    /// move up to N jobs from the queues into this process's in-progress lists,
    /// within the cluster-wide limiters (docs/limiters.md).
    ///
    /// ARGV: prefix, identity, maxFetch, mode ("strict"|"weighted"), seed,
    ///       day (UTC yyyy-mm-dd), nowSeconds, queueCount,
    ///       queueCount × (name, weight, allowance; -1 = no cap),
    ///       limiterCount, limiterCount × (name, kind, count, interval, lockTimeout,
    ///         classCount, classes…, queueCount, queues…),
    ///       opCount, opCount × (kind, queue, original, replacement, score, lease).
    /// Op kinds: A ack (processed), F failed without retry entry (processed+failed),
    ///   Q requeue to the queue's head, K the same at a shutdown deadline (processed+failed, as
    ///   Sidekiq counts a force-stopped job), R retry set, D dead set (processed+failed),
    ///   M malformed to the dead set (no stats).
    /// Every op first removes `original` from the in-progress list and does
    /// the rest only if that removed it, so replaying ops after a lost reply
    /// changes nothing; its lease (concurrent limiters' slots) is released either way.
    ///
    /// A queue whose limiter is full is not fetched from (its jobs stay in it). A fetched job
    /// of a class whose limiter is full goes to the `schedule` set with a backoff, untouched,
    /// without using a retry. At most `deferCap` jobs are deferred per call.
    /// Returns { {queue, job, …}, {emptyQueue, …}, appliedOps, {lease per job, "" for none},
    ///           {limitedQueue, …}, recheckMilliseconds, deferredCount }.
    static let exchange = RedisScript(
        name: "courier-exchange",
        source: addToDeadSet + releaseLease + #"""
            local prefix, identity = ARGV[1], ARGV[2]
            local maxFetch, mode, seed = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
            local day, now = ARGV[6], ARGV[7]
            local nowN = tonumber(now)
            local nq = tonumber(ARGV[8])
            local wipPrefix = prefix .. 'courier:wip:' .. identity .. ':'
            local leasesKey = prefix .. 'courier:leases:' .. identity
            local names, weights, allow = {}, {}, {}
            local i = 9
            for q = 1, nq do
              names[q] = ARGV[i]; weights[q] = tonumber(ARGV[i + 1]); allow[q] = tonumber(ARGV[i + 2])
              i = i + 3
            end
            local byClass, byQueue, classLimited = {}, {}, false
            local nlim = tonumber(ARGV[i]); i = i + 1
            for _ = 1, nlim do
              local lim = { name = ARGV[i], kind = ARGV[i + 1], count = tonumber(ARGV[i + 2]),
                            interval = tonumber(ARGV[i + 3]), timeout = tonumber(ARGV[i + 4]) }
              lim.key = prefix .. 'courier:limit:' .. lim.name
              i = i + 5
              for _ = 1, tonumber(ARGV[i]) do
                i = i + 1
                byClass[ARGV[i]] = byClass[ARGV[i]] or {}; table.insert(byClass[ARGV[i]], lim)
                classLimited = true
              end
              i = i + 1
              for _ = 1, tonumber(ARGV[i]) do
                i = i + 1
                byQueue[ARGV[i]] = byQueue[ARGV[i]] or {}; table.insert(byQueue[ARGV[i]], lim)
              end
              i = i + 1
            end
            local nops = tonumber(ARGV[i]); i = i + 1
            local processed, failed, applied = 0, 0, 0
            for o = 1, nops do
              local kind, queue, original, replacement, score, lease = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
              i = i + 6
              if lease ~= '' then releaseLease(prefix, leasesKey, lease) end
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

            -- Limiters: each one's room is read once per call, then counted down locally.
            local room = {}
            local function roomOf(lim)
              local r = room[lim.name]
              if r then return r end
              r = {}
              if lim.kind == 'concurrent' then
                redis.call('ZREMRANGEBYSCORE', lim.key .. ':leases', '-inf', nowN)
                r.left = lim.count - redis.call('ZCARD', lim.key .. ':leases')
              elseif lim.kind == 'window' then
                redis.call('ZREMRANGEBYSCORE', lim.key .. ':window', '-inf', nowN - lim.interval)
                r.left = lim.count - redis.call('ZCARD', lim.key .. ':window')
              else
                r.bucket = math.floor(nowN / lim.interval)
                r.left = lim.count - (tonumber(redis.call('GET', lim.key .. ':bucket:' .. r.bucket)) or 0)
              end
              room[lim.name] = r
              return r
            end
            -- Seconds until a full limiter may have room: a rate limiter's is exact; a
            -- concurrent one's leases mostly end with their jobs, on any courier, so soon.
            local function waitFor(lim)
              if lim.kind == 'bucket' then return (math.floor(nowN / lim.interval) + 1) * lim.interval - nowN end
              if lim.kind == 'concurrent' then return 0.1 end
              local first = redis.call('ZRANGE', lim.key .. ':window', 0, 0, 'WITHSCORES')
              if first[2] then return math.max(0, tonumber(first[2]) + lim.interval - nowN) end
              return 0
            end
            local function full(list)
              if list then
                for _, lim in ipairs(list) do if roomOf(lim).left <= 0 then return lim end end
              end
              return nil
            end
            local function rand()
              seed = (seed * 16807) % 2147483647
              return seed / 2147483647
            end
            local callSeq, slot = nil, 0
            -- Takes a slot of every limiter in the lists; returns the lease ("" when no concurrent one).
            local function admit(lists)
              if not callSeq then callSeq = redis.call('HINCRBY', leasesKey, '#', 1) end
              slot = slot + 1
              local member = identity .. '|' .. callSeq .. '.' .. slot
              local held = {}
              for _, list in ipairs(lists) do
                for _, lim in ipairs(list) do
                  local r = roomOf(lim)
                  r.left = r.left - 1
                  if lim.kind == 'concurrent' then
                    redis.call('ZADD', lim.key .. ':leases', nowN + lim.timeout, member)
                    held[#held + 1] = lim.name
                  elseif lim.kind == 'window' then
                    redis.call('ZADD', lim.key .. ':window', nowN, member)
                    redis.call('EXPIRE', lim.key .. ':window', lim.interval + 60)
                  else
                    local key = lim.key .. ':bucket:' .. r.bucket
                    redis.call('INCR', key)
                    redis.call('EXPIRE', key, lim.interval * 2 + 1)
                  end
                end
              end
              if #held == 0 then return '' end
              redis.call('HSET', leasesKey, member, table.concat(held, ' '))
              return member
            end

            local jobs, empty, leases, limited = {}, {}, {}, {}
            local fetched, deferred, recheck = 0, 0, nil
            local deferCap = 100
            local function holdBack(q, lim)
              if allow[q] ~= 0 then limited[#limited + 1] = names[q] end
              allow[q] = 0
              local w = lim and waitFor(lim) or 0
              if not recheck or w < recheck then recheck = w end
            end
            if maxFetch > 0 then
              redis.call('SADD', prefix .. 'courier:wip', identity)
              local registered = {}
              local function take(q)
                local queueLimits = byQueue[names[q]]
                local blocked = full(queueLimits)
                if blocked then holdBack(q, blocked); return false end
                if not registered[q] then
                  -- Recovery finds in-progress lists through this set. Empty queues too:
                  -- a queue watcher may claim into their lists next (BLMOVE).
                  redis.call('SADD', prefix .. 'courier:wip:' .. identity, names[q])
                  registered[q] = true
                end
                local job = redis.call('RPOPLPUSH', prefix .. 'queue:' .. names[q], wipPrefix .. names[q])
                if not job then
                  empty[#empty + 1] = names[q]
                  allow[q] = 0
                  return false
                end
                local classLimits, jid = nil, nil
                if classLimited then
                  local ok, decoded = pcall(cjson.decode, job)
                  if ok and type(decoded) == 'table' then
                    if type(decoded.jid) == 'string' then jid = decoded.jid end
                    for _, field in ipairs({ 'wrapped', 'class' }) do
                      local list = type(decoded[field]) == 'string' and byClass[decoded[field]]
                      if list then
                        classLimits = classLimits or {}
                        for _, lim in ipairs(list) do classLimits[#classLimits + 1] = lim end
                      end
                    end
                  end
                end
                local blockedBy = full(classLimits)
                if blockedBy then
                  -- Over a class's limit: to the schedule set, untouched, without using a retry.
                  redis.call('LPOP', wipPrefix .. names[q])
                  local counter = prefix .. 'courier:limit:overrated:' .. (jid or redis.sha1hex(job))
                  local n = redis.call('INCR', counter)
                  redis.call('EXPIRE', counter, 86400)
                  local delay
                  if blockedBy.kind == 'concurrent' then
                    delay = math.min(60, 2 ^ (math.min(n, 8) - 1)) * (0.5 + rand())
                  else
                    delay = waitFor(blockedBy) + rand() * math.min(blockedBy.interval * math.min(n, 10), 300)
                  end
                  redis.call('ZADD', prefix .. 'schedule', nowN + delay, job)
                  deferred = deferred + 1
                  if deferred >= deferCap then holdBack(q, nil) end
                  return true
                end
                local lease = ''
                if queueLimits or classLimits then
                  lease = admit({ queueLimits or {}, classLimits or {} })
                  if classLimits and jid then redis.call('DEL', prefix .. 'courier:limit:overrated:' .. jid) end
                end
                jobs[#jobs + 1] = names[q]; jobs[#jobs + 1] = job
                leases[#leases + 1] = lease
                fetched = fetched + 1
                if allow[q] > 0 then allow[q] = allow[q] - 1 end
                return true
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
            return { jobs, empty, applied, leases, limited, recheck and math.floor(recheck * 1000) or -1, deferred }
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
        source: releaseLease + #"""
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
                -- Its concurrent limiters' slots come back now, not at their lock_timeout.
                local leasesKey = prefix .. 'courier:leases:' .. owner
                for _, member in ipairs(redis.call('HKEYS', leasesKey)) do
                  if member ~= '#' then releaseLease(prefix, leasesKey, member) end
                end
                redis.call('DEL', leasesKey)
              end
            end
            return { recovered, poison, gone }
            """#)

    /// After a lost reply this process cannot know whether its last fetch
    /// ran: any job in its own in-progress lists that it is not running goes
    /// back to the head of its queue, and any limiter lease no running job holds is released.
    ///
    /// ARGV: prefix, identity, leaseCount, the leases its running jobs hold,
    ///       then pairs (queue, job) of the jobs it is running.
    /// Returns the number of jobs pushed back.
    static let reconcile = RedisScript(
        name: "courier-reconcile",
        source: releaseLease + #"""
            local prefix, me = ARGV[1], ARGV[2]
            local kept = {}
            local nleases = tonumber(ARGV[3])
            for l = 1, nleases do kept[ARGV[3 + l]] = true end
            local leasesKey = prefix .. 'courier:leases:' .. me
            for _, member in ipairs(redis.call('HKEYS', leasesKey)) do
              if member ~= '#' and not kept[member] then releaseLease(prefix, leasesKey, member) end
            end
            local running = {}
            local i = 4 + nleases
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

    /// Each heartbeat: this process's concurrent limiter leases expire `lockTimeout`
    /// seconds from now, so a lease outlives a long job but not a dead courier by long;
    /// and the declarations are published for `courier status` (`courier:limiters`, kept a day).
    ///
    /// ARGV: prefix, identity, nowSeconds, count, count × (limiter name, lockTimeout),
    ///       then pairs (limiter name, declaration JSON).
    /// Returns the number of leases renewed.
    static let renewLeases = RedisScript(
        name: "courier-renew-leases",
        source: #"""
            local prefix, me, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
            local timeouts = {}
            local n = tonumber(ARGV[4])
            for i = 5, 4 + 2 * n, 2 do timeouts[ARGV[i]] = tonumber(ARGV[i + 1]) end
            for i = 5 + 2 * n, #ARGV, 2 do redis.call('HSET', prefix .. 'courier:limiters', ARGV[i], ARGV[i + 1]) end
            if #ARGV >= 5 + 2 * n then redis.call('EXPIRE', prefix .. 'courier:limiters', 86400) end
            local leases = redis.call('HGETALL', prefix .. 'courier:leases:' .. me)
            local renewed = 0
            for i = 1, #leases, 2 do
              local member = leases[i]
              if member ~= '#' then
                for name in string.gmatch(leases[i + 1], '%S+') do
                  local timeout = timeouts[name]
                  if timeout then
                    -- Not XX: a lease that lapsed while Redis or this courier stalled belongs to a job still
                    -- running here, so it counts again (a released lease is no longer in the hash).
                    redis.call('ZADD', prefix .. 'courier:limit:' .. name .. ':leases', now + timeout, member)
                    renewed = renewed + 1
                  end
                end
              end
            end
            return renewed
            """#)
}

extension Scripts {
    /// At a clean exit: forget this process's in-progress registry if every
    /// list is empty (anything left stays for recovery by a survivor).
    /// ARGV: prefix, identity. Returns jobs still held (0 when retired).
    static let retire = RedisScript(
        name: "courier-retire",
        source: releaseLease + #"""
            local prefix, me = ARGV[1], ARGV[2]
            local queuesKey = prefix .. 'courier:wip:' .. me
            local held = 0
            for _, queue in ipairs(redis.call('SMEMBERS', queuesKey)) do
              held = held + redis.call('LLEN', queuesKey .. ':' .. queue)
            end
            if held == 0 then
              redis.call('DEL', queuesKey)
              redis.call('SREM', prefix .. 'courier:wip', me)
              local leasesKey = prefix .. 'courier:leases:' .. me
              for _, member in ipairs(redis.call('HKEYS', leasesKey)) do
                if member ~= '#' then releaseLease(prefix, leasesKey, member) end
              end
              redis.call('DEL', leasesKey)
            end
            return held
            """#)
}
