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

local function key(i)
  local k = KEYS[int(i)]
  if k == nil then
    error('account.lua: ARGV[' .. i .. '] names no key')
  end
  return k
end

local function epoch_key(e)
  local k = KEYS[epoch_key0 + e - epoch_base]
  if e < epoch_base or k == nil then
    error('account.lua: no key for epoch ' .. fmt(e))
  end
  return k
end

-- Pass 1: read and check every event.
local evs = {}
for i = 1, n do
  local o = G + (i - 1) * F
  local ev = {
    now = int(o + 1), first = int(o + 2), now_epoch = int(o + 3), size = int(o + 4),
    weight = int(o + 5), uploaded = int(o + 6), downloaded = int(o + 7), left = int(o + 8),
    stopped = ARGV[o + 9] == '1', sid = ARGV[o + 10], pools = ARGV[o + 11],
    sess = key(o + 12), set = key(o + 13), cred = key(o + 14),
  }
  if ev.now < ev.now_epoch * L or ev.now >= (ev.now_epoch + 1) * L or ev.first > ev.now_epoch then
    error('account.lua: event ' .. i .. ': now ' .. fmt(ev.now) .. ' is not in epoch ' .. fmt(ev.now_epoch))
  end
  epoch_key(ev.first)
  epoch_key(ev.now_epoch)
  evs[i] = ev
end

-- Session hashes: read on first use, written at the end.
-- op: nil (untouched), 'save' (HSET + EXPIRE), 'del', 'touch' (EXPIRE).
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

-- Session sets: membership cached, every change applied at once; EXPIRE at
-- the end for the sets a session was saved into.
local members, set_ttl = {}, {}
local function is_member(set, sid)
  local m = members[set]
  if m == nil then
    m = {}
    members[set] = m
  end
  local v = m[sid]
  if v == nil then
    v = redis.call('ZSCORE', set, sid) ~= false
    m[sid] = v
  end
  return v
end
local function set_member(set, sid, v)
  local m = members[set]
  if m == nil then
    m = {}
    members[set] = m
  end
  m[sid] = v
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
local incr, incr_order, touched = {}, {}, {}
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
  touched[k] = true
end

local function end_session(ev, s)
  s.up, s.down, s.seen, s.seeding, s.op = nil, nil, nil, nil, 'del'
  redis.call('ZREM', ev.set, ev.sid)
  set_member(ev.set, ev.sid, false)
end

local function save_session(ev, s, up, down, seen, seeding)
  s.up, s.down, s.seen, s.seeding, s.op = up, down, seen, seeding and '1' or '0', 'save'
  redis.call('ZADD', ev.set, fmt(seen), ev.sid)
  set_member(ev.set, ev.sid, true)
  set_ttl[ev.set] = true
end

local function account(ev)
  local now = ev.now
  local seeding_now = ev.left == 0 and not ev.stopped

  -- The cap. A session not seen within max_gap can never earn again without a
  -- fresh start, so it no longer holds a place (crashed clients that never sent
  -- "stopped" would otherwise lock the user out until the set expired).
  if not is_member(ev.set, ev.sid) and redis.call('ZCARD', ev.set) >= max_sessions then
    redis.call('ZREMRANGEBYSCORE', ev.set, '-inf', '(' .. fmt(now - max_gap))
    members[ev.set] = nil
    if redis.call('ZCARD', ev.set) >= max_sessions then
      return 4, 0, 0, 0, 0
    end
  end

  local s = session(ev.sess)
  local up, down, seen = s.up, s.down, s.seen

  -- No session yet, or a client restart (a counter went down): start afresh.
  if up == nil or down == nil or seen == nil or (now >= seen and (ev.uploaded < up or ev.downloaded < down)) then
    local code = 1
    if seen ~= nil then
      code = 3
    end
    if ev.stopped then
      end_session(ev, s)
    else
      save_session(ev, s, ev.uploaded, ev.downloaded, now, seeding_now)
    end
    return code, 0, 0, 0, 0
  end

  -- An event older than the session state (clock skew between instances, or a
  -- replay): elapsed counts as 0, so no credit and no delta; the newer state is
  -- kept so nothing is lost or counted twice.
  if now < seen then
    if ev.stopped then
      end_session(ev, s)
    else
      if s.op == nil then
        s.op = 'touch'
      end
      redis.call('ZADD', ev.set, fmt(seen), ev.sid)
      set_member(ev.set, ev.sid, true)
      set_ttl[ev.set] = true
    end
    return 5, 0, 0, 0, 0
  end

  local elapsed = now - seen
  local rate_cap = max_rate * elapsed
  local d_up = math.min(ev.uploaded - up, rate_cap)
  local d_down = math.min(ev.downloaded - down, rate_cap, ev.size)
  local credited, sealed = 0, 0

  local function credit(e, secs)
    local k = epoch_key(e)
    hincr(k, 'seed_s', secs)
    if ev.weight > 0 then
      for pool in string.gmatch(ev.pools, '[^,]+') do
        hincr(k, 'pts:' .. pool, secs * ev.weight)
      end
    end
  end

  -- Seed time: a seeder at both ends of a gap no longer than max_gap. The
  -- interval starts at the later of seen and credited-until, so a user earns
  -- once per second on a torrent however many clients it runs.
  if s.seeding == '1' and ev.left == 0 and elapsed > 0 and elapsed <= max_gap then
    local c = cred_get(ev.cred)
    local from = math.max(seen, c.v)
    if now > from then
      for e = ev.first, ev.now_epoch do
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
      if sealed > 0 and min_open >= ev.first and min_open <= ev.now_epoch then
        credit(min_open, sealed)
        credited = credited + sealed
      end
      -- Only a session seen before the mark needs it, and such a session can
      -- earn only until seen + max_gap < mark + session_ttl: no refresh needed.
      c.v, c.dirty = now, true
    end
  end

  -- Self-reported bytes: statistics only, on the epoch of now if still open.
  if ev.now_epoch >= min_open and (d_up > 0 or d_down > 0) then
    local k = epoch_key(ev.now_epoch)
    if d_up > 0 then
      hincr(k, 'up', d_up)
    end
    if d_down > 0 then
      hincr(k, 'down', d_down)
    end
  end

  if ev.stopped then
    end_session(ev, s)
  else
    save_session(ev, s, ev.uploaded, ev.downloaded, now, seeding_now)
  end
  return 2, credited, d_up, d_down, sealed
end

local out = {}
for i = 1, n do
  local code, credited, d_up, d_down, sealed = account(evs[i])
  local o = (i - 1) * 5
  out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5] = code, credited, d_up, d_down, sealed
end

-- Deferred writes.
for _, k in ipairs(incr_order) do
  for field, v in pairs(incr[k]) do
    if v ~= 0 then
      redis.call('HINCRBY', k, field, fmt(v))
    end
  end
end
for k in pairs(touched) do
  redis.call('EXPIRE', k, epoch_ttl)
end
for k, c in pairs(creds) do
  if c.dirty then
    redis.call('SET', k, fmt(c.v), 'EX', session_ttl)
  end
end
for k, s in pairs(sessions) do
  if s.op == 'save' then
    redis.call('HSET', k, 'up', fmt(s.up), 'down', fmt(s.down), 'seen', fmt(s.seen), 'seeding', s.seeding)
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
