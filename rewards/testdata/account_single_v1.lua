-- account.lua: seeding-time accounting of one announce (one rewards.Event).
-- Called by Accountant.Account (accountant.go); every key is in the slot
-- {u:<user>}. Go does all float work (the weight) and passes integers; this
-- script does integer arithmetic only, on values below 2^53 (Go clamps).
--
-- KEYS
--   [1]  session hash   KeySession(user, info_hash_hex, peer_id_hex):
--                       up, down, seen (unix s), seeding ("1"/"0")
--   [2]  session zset   KeySessions(user, info_hash_hex):
--                       member peer_id_hex, score = seen; the session cap
--   [3]  credited-until KeyCredited(user, info_hash_hex): unix s
--   [4..] epoch hashes  KeyUserEpoch(user, e) for e = first_epoch,
--                       first_epoch+1, ..., epoch(now), consecutive
--                       (first_epoch = epoch(now - max_gap_s); at most 65)
-- ARGV
--   [1]  now            unix s of the announce
--   [2]  epoch_len_s    epoch e covers [e*L, (e+1)*L)
--   [3]  first_epoch    epoch of KEYS[4]
--   [4]  min_open_epoch epochs below it are sealed: never written
--   [5]  max_gap_s      longest announce gap that still counts as seeding
--   [6]  max_rate       bytes/s a counter may grow
--   [7]  size           torrent bytes (caps a download delta)
--   [8]  weight         micro-points per seed second
--   [9]  uploaded       cumulative, as reported
--   [10] downloaded     cumulative, as reported
--   [11] left           bytes left; 0 = seeding
--   [12] stopped        "1" when the session ends with this announce
--   [13] session_id     peer id hex (member of KEYS[2])
--   [14] max_sessions   tracked sessions per (user, torrent)
--   [15] session_ttl_s  TTL of KEYS[1..3]
--   [16] epoch_ttl_s    TTL of every epoch hash written
--   [17] pools          comma-separated pool ids ("global" or "global,p7")
-- Returns {code, credited_s, delta_up, delta_down, sealed_s}
--   code 1 new session (first announce: no credit)
--        2 accounted (an existing session moved on)
--        3 counter reset (a counter went down: new session, no credit)
--        4 capped (max_sessions other live sessions: nothing stored but
--          the pruning of sessions silent for longer than max_gap)
--        5 late (now < seen: an older event; nothing credited)
--   credited_s  seed seconds credited to open epochs
--   delta_up/delta_down  clamped byte deltas (statistics only)
--   sealed_s    seed seconds that fell in sealed epochs; they are carried into
--               the oldest open epoch (dropped only when the event itself is late)
-- Epoch hash fields: "seed_s", "pts:<pool>" (seed_s x weight), "up", "down".

local MAXINT = 9007199254740991 -- 2^53 - 1

local function int(i)
  local v = tonumber(ARGV[i])
  if v == nil or v ~= math.floor(v) or v > MAXINT or v < -MAXINT then
    error('account.lua: ARGV[' .. i .. '] is not an integer below 2^53: ' .. tostring(ARGV[i]))
  end
  return v
end

-- fmt renders an integer exactly (tostring would use %.14g).
local function fmt(v)
  return string.format('%d', v)
end

local sess, set, cred = KEYS[1], KEYS[2], KEYS[3]
local now = int(1)
local L = int(2)
local first = int(3)
local min_open = int(4)
local max_gap = int(5)
local max_rate = int(6)
local size = int(7)
local weight = int(8)
local uploaded = int(9)
local downloaded = int(10)
local left = int(11)
local stopped = ARGV[12] == '1'
local sid = ARGV[13]
local max_sessions = int(14)
local session_ttl = int(15)
local epoch_ttl = int(16)
local pools = ARGV[17]

if L <= 0 or #KEYS < 4 then
  error('account.lua: need epoch_len_s > 0 and at least one epoch key')
end
local now_epoch = first + #KEYS - 4
if now < now_epoch * L or now >= (now_epoch + 1) * L then
  error('account.lua: now ' .. fmt(now) .. ' is not in epoch ' .. fmt(now_epoch) .. ' (the last epoch key)')
end

local seeding_now = left == 0 and not stopped

local function end_session()
  redis.call('DEL', sess)
  redis.call('ZREM', set, sid)
end

local function save_session(up, down, seen, seeding)
  redis.call('HSET', sess, 'up', fmt(up), 'down', fmt(down), 'seen', fmt(seen), 'seeding', seeding and '1' or '0')
  redis.call('EXPIRE', sess, session_ttl)
  redis.call('ZADD', set, fmt(seen), sid)
  redis.call('EXPIRE', set, session_ttl)
end

-- The cap. A session not seen within max_gap can never earn again without a
-- fresh start, so it no longer holds a place (crashed clients that never sent
-- "stopped" would otherwise lock the user out until the set expired).
if not redis.call('ZSCORE', set, sid) and redis.call('ZCARD', set) >= max_sessions then
  redis.call('ZREMRANGEBYSCORE', set, '-inf', '(' .. fmt(now - max_gap))
  if redis.call('ZCARD', set) >= max_sessions then
    return {4, 0, 0, 0, 0}
  end
end

local h = redis.call('HMGET', sess, 'up', 'down', 'seen', 'seeding')
local up, down, seen = tonumber(h[1]), tonumber(h[2]), tonumber(h[3])

-- No session yet, or a client restart (a counter went down): start afresh.
if up == nil or down == nil or seen == nil or (now >= seen and (uploaded < up or downloaded < down)) then
  local code = 1
  if seen ~= nil then
    code = 3
  end
  if stopped then
    end_session()
  else
    save_session(uploaded, downloaded, now, seeding_now)
  end
  return {code, 0, 0, 0, 0}
end

-- An event older than the session state (clock skew between instances, or a
-- replay): elapsed counts as 0, so no credit and no delta; the newer state is
-- kept so nothing is lost or counted twice.
if now < seen then
  if stopped then
    end_session()
  else
    redis.call('EXPIRE', sess, session_ttl)
    redis.call('ZADD', set, fmt(seen), sid)
    redis.call('EXPIRE', set, session_ttl)
  end
  return {5, 0, 0, 0, 0}
end

local elapsed = now - seen
local rate_cap = max_rate * elapsed
local d_up = math.min(uploaded - up, rate_cap)
local d_down = math.min(downloaded - down, rate_cap, size)

local touched = {}
local credited, sealed = 0, 0

local function credit(i, s)
  redis.call('HINCRBY', KEYS[i], 'seed_s', fmt(s))
  if weight > 0 then
    for pool in string.gmatch(pools, '[^,]+') do
      redis.call('HINCRBY', KEYS[i], 'pts:' .. pool, fmt(s * weight))
    end
  end
  touched[i] = true
end

-- Seed time: a seeder at both ends of a gap no longer than max_gap. The
-- interval starts at the later of seen and credited-until, so a user earns
-- once per second on a torrent however many clients it runs.
if h[4] == '1' and left == 0 and elapsed > 0 and elapsed <= max_gap then
  local cu = tonumber(redis.call('GET', cred) or '0') or 0
  local from = math.max(seen, cu)
  if now > from then
    for i = 4, #KEYS do
      local e = first + i - 4
      local lo = math.max(from, e * L)
      local hi = math.min(now, (e + 1) * L)
      if hi > lo then
        local s = hi - lo
        if e >= min_open then
          credit(i, s)
          credited = credited + s
        else
          sealed = sealed + s
        end
      end
    end
    -- Seconds whose epoch is already sealed (the gap straddled its grace)
    -- are carried into the oldest open epoch instead of being lost.
    local open_i = min_open - first + 4
    if sealed > 0 and open_i >= 4 and open_i <= #KEYS then
      credit(open_i, sealed)
      credited = credited + sealed
    end
    -- Only a session seen before the mark needs it, and such a session can
    -- earn only until seen + max_gap < mark + session_ttl: no refresh needed.
    redis.call('SET', cred, fmt(now), 'EX', session_ttl)
  end
end

-- Self-reported bytes: statistics only, on the epoch of now if still open.
if now_epoch >= min_open and (d_up > 0 or d_down > 0) then
  local k = KEYS[#KEYS]
  if d_up > 0 then
    redis.call('HINCRBY', k, 'up', fmt(d_up))
  end
  if d_down > 0 then
    redis.call('HINCRBY', k, 'down', fmt(d_down))
  end
  touched[#KEYS] = true
end

for i in pairs(touched) do
  redis.call('EXPIRE', KEYS[i], epoch_ttl)
end

if stopped then
  end_session()
else
  save_session(uploaded, downloaded, now, seeding_now)
end
return {2, credited, d_up, d_down, sealed}
