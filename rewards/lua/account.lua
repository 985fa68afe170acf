-- account.lua: seeding-time accounting of a batch of one user's announces
-- (rewards.Events), applied in order, exactly as if each ran alone. Called
-- by Accountant.Account (accountant.go) once per user and chunk of events;
-- every key is in the slot {u:<user>}. Go does all float work (the weight)
-- and passes integers; this script does integer arithmetic only, on values
-- below 2^53 (Go clamps).
--
-- Redis work is per session and per key, not per event: a session hash is
-- read once (HMGET) and written once (HSET, EXPIRE) per call, the
-- credited-until marks are read and written once, epoch hash increments are
-- summed and written once per field, and each key's EXPIRE is sent once.
-- The session sets (the cap) are used directly, in order, since the cap
-- depends on every earlier event.
--
-- KEYS: every key the events use, each once; ARGV names them by index.
--   session hash   KeySession(user, info_hash_hex, peer_id_hex):
--                  up, down, seen (unix s), seeding ("1"/"0")
--   session zset   KeySessions(user, info_hash_hex):
--                  member peer_id_hex, score = seen; the session cap
--   credited-until KeyCredited(user, info_hash_hex): unix s
--   epoch hashes   KeyUserEpoch(user, e) for e = epoch_base, epoch_base+1,
--                  ..., consecutive from KEYS[epoch_key0]
-- ARGV
--   [1]  n              number of events
--   [2]  epoch_len_s    epoch e covers [e*L, (e+1)*L)
--   [3]  min_open_epoch epochs below it are sealed: never written
--   [4]  max_gap_s      longest announce gap that still counts as seeding
--   [5]  max_rate       bytes/s a counter may grow
--   [6]  max_sessions   tracked sessions per (user, torrent)
--   [7]  session_ttl_s  TTL of session hashes, sets and credited-until marks
--   [8]  epoch_ttl_s    TTL of every epoch hash written
--   [9]  epoch_base     the epoch of KEYS[epoch_key0]
--   [10] epoch_key0     index of the first epoch hash in KEYS
--   then 14 per event:
--   +1  now            unix s of the announce
--   +2  first_epoch    epoch(now - max_gap_s) (>= epoch_base)
--   +3  now_epoch      epoch(now)
--   +4  size           torrent bytes (caps a download delta)
--   +5  weight         micro-points per seed second
--   +6  uploaded       cumulative, as reported
--   +7  downloaded     cumulative, as reported
--   +8  left           bytes left; 0 = seeding
--   +9  stopped        "1" when the session ends with this announce
--   +10 session_id     peer id hex (member of the session zset)
--   +11 pools          comma-separated pool ids ("global" or "global,p7")
--   +12 session        KEYS index of the session hash
--   +13 sessions       KEYS index of the session zset
--   +14 credited       KEYS index of the credited-until mark
-- Returns 5 integers per event, in order:
--   {code, credited_s, delta_up, delta_down, sealed_s}
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
-- Every argument is checked before anything is written.

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

local G, F = 10, 14
local n = int(1)
local L = int(2)
local min_open = int(3)
local max_gap = int(4)
local max_rate = int(5)
local max_sessions = int(6)
local session_ttl = int(7)
local epoch_ttl = int(8)
local epoch_base = int(9)
local epoch_key0 = int(10)
if L <= 0 or n < 0 or #ARGV ~= G + n * F then
  error('account.lua: need epoch_len_s > 0 and ' .. G .. ' + 14 n arguments')
end

local function epoch_key(e)
  local k = KEYS[epoch_key0 + e - epoch_base]
  if e < epoch_base or k == nil then
    error('account.lua: no key for epoch ' .. fmt(e))
  end
  return k
end

-- Session sets: the score of every session of the batch (false when not a
-- member), from one ZMSCORE per set, then kept up to date; the set's size
-- once asked (ZCARD), kept up to date too; and the score below which the set
-- was last pruned, so a prune that cannot remove anything is skipped.
local members, card, pruned, set_ttl = {}, {}, {}, {}
local asked = {}

-- Pass 1: check every event before anything is written (a bad argument is
-- a bug on the Go side: fail the whole call, write nothing), and gather the
-- sessions whose membership is needed.
for i = 1, n do
  local o = G + (i - 1) * F
  local now, first, now_epoch = tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3])
  if not (now and first and now_epoch and tonumber(ARGV[o + 4]) and tonumber(ARGV[o + 5]) and tonumber(ARGV[o + 6])
      and tonumber(ARGV[o + 7]) and tonumber(ARGV[o + 8])) then
    error('account.lua: event ' .. i .. ': a numeric argument is not a number')
  end
  if now < now_epoch * L or now >= (now_epoch + 1) * L or first > now_epoch then
    error('account.lua: event ' .. i .. ': now ' .. fmt(now) .. ' is not in epoch ' .. fmt(now_epoch))
  end
  epoch_key(first)
  epoch_key(now_epoch)
  local sess, set, cred = KEYS[tonumber(ARGV[o + 12])], KEYS[tonumber(ARGV[o + 13])], KEYS[tonumber(ARGV[o + 14])]
  if not (sess and set and cred) then
    error('account.lua: event ' .. i .. ' names no key')
  end
  local sid = ARGV[o + 10]
  local a = asked[set]
  if a == nil then
    a = { list = {}, seen = {} }
    asked[set] = a
  end
  if not a.seen[sid] then
    a.seen[sid] = true
    a.list[#a.list + 1] = sid
  end
end
for set, a in pairs(asked) do
  local scores = redis.call('ZMSCORE', set, unpack(a.list))
  local m = {}
  for j, sid in ipairs(a.list) do
    m[sid] = scores[j] and tonumber(scores[j]) or false
  end
  members[set] = m
end

-- Scores to set, per session set, written with one ZADD per set: before
-- anything else reads or changes the set in Redis, and at the end.
local pending = {}
local function flush_scores(set)
  local p = pending[set]
  if p ~= nil and #p > 0 then
    redis.call('ZADD', set, unpack(p))
  end
  pending[set] = nil
end
local function add_score(set, score_s, score, sid)
  local p = pending[set]
  if p == nil then
    p = {}
    pending[set] = p
  end
  p[#p + 1] = score_s
  p[#p + 1] = sid
  local m = members[set]
  if not m[sid] and card[set] then
    card[set] = card[set] + 1
  end
  m[sid] = score
  if pruned[set] and score < pruned[set] then
    pruned[set] = nil
  end
  set_ttl[set] = true
end
local function remove(set, sid)
  flush_scores(set)
  local r = redis.call('ZREM', set, sid)
  if card[set] then
    card[set] = card[set] - r
  end
  members[set][sid] = false
end

-- Session hashes: read on first use, written at the end. Values are kept
-- as the strings to write back; op: nil (untouched), 'save' (HSET +
-- EXPIRE), 'del', 'touch' (EXPIRE).
local sessions = {}
local function session(k)
  local s = sessions[k]
  if s == nil then
    local h = redis.call('HMGET', k, 'up', 'down', 'seen', 'seeding')
    s = { up = tonumber(h[1]), down = tonumber(h[2]), seen = tonumber(h[3]), seeding = h[4] }
    sessions[k] = s
  end
  return s
end

-- Credited-until marks: read on first use, written at the end.
local creds = {}
local function cred_get(k)
  local c = creds[k]
  if c == nil then
    c = { v = tonumber(redis.call('GET', k) or '0') or 0 }
    creds[k] = c
  end
  return c
end

-- Epoch hash increments, summed per (key, field); each written key expires.
local incr, incr_order = {}, {}
local function hincr(k, field, v)
  local t = incr[k]
  if t == nil then
    t = {}
    incr[k] = t
    incr_order[#incr_order + 1] = k
  end
  local cur = t[field] or 0
  if cur + v > MAXINT then -- keep the sum exact: write what we have
    redis.call('HINCRBY', k, field, fmt(cur))
    cur = 0
  end
  t[field] = cur + v
end

-- The event being accounted (set by the main loop).
local now, now_s, first, now_epoch, size, weight, uploaded, downloaded, left, stopped, sid, pools, sess_k, set_k, cred_k
local up_s, down_s

local function credit(e, secs)
  local k = epoch_key(e)
  hincr(k, 'seed_s', secs)
  if weight > 0 then
    for pool in string.gmatch(pools, '[^,]+') do
      hincr(k, 'pts:' .. pool, secs * weight)
    end
  end
end

local function end_session(s)
  s.up, s.down, s.seen, s.seeding, s.op = nil, nil, nil, nil, 'del'
  remove(set_k, sid)
end

local function save_session(s, seeding)
  s.up, s.down, s.seen, s.seeding, s.op = uploaded, downloaded, now, seeding and '1' or '0', 'save'
  s.up_s, s.down_s, s.seen_s = up_s, down_s, now_s
  add_score(set_k, now_s, now, sid)
end

local function account()
  local seeding_now = left == 0 and not stopped

  -- The cap. A session not seen within max_gap can never earn again without a
  -- fresh start, so it no longer holds a place (crashed clients that never sent
  -- "stopped" would otherwise lock the user out until the set expired).
  local m = members[set_k]
  if not m[sid] then
    local c = card[set_k]
    if c == nil then
      flush_scores(set_k)
      c = redis.call('ZCARD', set_k)
      card[set_k] = c
    end
    local floor = now - max_gap
    if c >= max_sessions and (pruned[set_k] == nil or floor > pruned[set_k]) then
      flush_scores(set_k)
      c = c - redis.call('ZREMRANGEBYSCORE', set_k, '-inf', '(' .. fmt(floor))
      card[set_k], pruned[set_k] = c, floor
      for member, score in pairs(m) do
        if score and score < floor then
          m[member] = false
        end
      end
    end
    if c >= max_sessions then
      return 4, 0, 0, 0, 0
    end
  end

  local s = session(sess_k)
  local up, down, seen = s.up, s.down, s.seen

  -- No session yet, or a client restart (a counter went down): start afresh.
  if up == nil or down == nil or seen == nil or (now >= seen and (uploaded < up or downloaded < down)) then
    local code = 1
    if seen ~= nil then
      code = 3
    end
    if stopped then
      end_session(s)
    else
      save_session(s, seeding_now)
    end
    return code, 0, 0, 0, 0
  end

  -- An event older than the session state (clock skew between instances, or a
  -- replay): elapsed counts as 0, so no credit and no delta; the newer state is
  -- kept so nothing is lost or counted twice.
  if now < seen then
    if stopped then
      end_session(s)
    else
      if s.op == nil then
        s.op = 'touch'
      end
      add_score(set_k, fmt(seen), seen, sid)
    end
    return 5, 0, 0, 0, 0
  end

  local elapsed = now - seen
  local rate_cap = max_rate * elapsed
  local d_up = math.min(uploaded - up, rate_cap)
  local d_down = math.min(downloaded - down, rate_cap, size)
  local credited, sealed = 0, 0

  -- Seed time: a seeder at both ends of a gap no longer than max_gap. The
  -- interval starts at the later of seen and credited-until, so a user earns
  -- once per second on a torrent however many clients it runs.
  if s.seeding == '1' and left == 0 and elapsed > 0 and elapsed <= max_gap then
    local c = cred_get(cred_k)
    local from = math.max(seen, c.v)
    if now > from then
      for e = first, now_epoch do
        local lo = math.max(from, e * L)
        local hi = math.min(now, (e + 1) * L)
        if hi > lo then
          local secs = hi - lo
          if e >= min_open then
            credit(e, secs)
            credited = credited + secs
          else
            sealed = sealed + secs
          end
        end
      end
      -- Seconds whose epoch is already sealed (the gap straddled its grace)
      -- are carried into the oldest open epoch instead of being lost.
      if sealed > 0 and min_open >= first and min_open <= now_epoch then
        credit(min_open, sealed)
        credited = credited + sealed
      end
      -- Only a session seen before the mark needs it, and such a session can
      -- earn only until seen + max_gap < mark + session_ttl: no refresh needed.
      c.v, c.s = now, now_s
    end
  end

  -- Self-reported bytes: statistics only, on the epoch of now if still open.
  if now_epoch >= min_open and (d_up > 0 or d_down > 0) then
    local k = epoch_key(now_epoch)
    if d_up > 0 then
      hincr(k, 'up', d_up)
    end
    if d_down > 0 then
      hincr(k, 'down', d_down)
    end
  end

  if stopped then
    end_session(s)
  else
    save_session(s, seeding_now)
  end
  return 2, credited, d_up, d_down, sealed
end

local out = {}
for i = 1, n do
  local o = G + (i - 1) * F
  now_s = ARGV[o + 1]
  now = tonumber(now_s)
  first, now_epoch = tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3])
  size, weight = tonumber(ARGV[o + 4]), tonumber(ARGV[o + 5])
  up_s, down_s = ARGV[o + 6], ARGV[o + 7]
  uploaded, downloaded, left = tonumber(up_s), tonumber(down_s), tonumber(ARGV[o + 8])
  stopped, sid, pools = ARGV[o + 9] == '1', ARGV[o + 10], ARGV[o + 11]
  sess_k, set_k, cred_k = KEYS[tonumber(ARGV[o + 12])], KEYS[tonumber(ARGV[o + 13])], KEYS[tonumber(ARGV[o + 14])]
  local code, credited, d_up, d_down, sealed = account()
  local r = (i - 1) * 5
  out[r + 1], out[r + 2], out[r + 3], out[r + 4], out[r + 5] = code, credited, d_up, d_down, sealed
end

-- Deferred writes.
for set in pairs(pending) do
  flush_scores(set)
end
for _, k in ipairs(incr_order) do
  for field, v in pairs(incr[k]) do
    redis.call('HINCRBY', k, field, fmt(v))
  end
  redis.call('EXPIRE', k, epoch_ttl)
end
for k, c in pairs(creds) do
  if c.s then
    redis.call('SET', k, c.s, 'EX', session_ttl)
  end
end
for k, s in pairs(sessions) do
  if s.op == 'save' then
    redis.call('HSET', k, 'up', s.up_s, 'down', s.down_s, 'seen', s.seen_s, 'seeding', s.seeding)
    redis.call('EXPIRE', k, session_ttl)
  elseif s.op == 'del' then
    redis.call('DEL', k)
  elseif s.op == 'touch' then
    redis.call('EXPIRE', k, session_ttl)
  end
end
for k in pairs(set_ttl) do
  redis.call('EXPIRE', k, session_ttl)
end
return out
