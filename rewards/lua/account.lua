-- account.lua: seeding-time accounting of a batch of one user's announces
-- (rewards.Events), applied in order, exactly as if each ran alone. Called
-- by Accountant.Account (accountant.go) once per user and chunk of events;
-- every key is in the slot {u:<user>}. Go does all float work (the weight)
-- and passes integers; this script does integer arithmetic only, on values
-- below 2^53 (Go clamps).
--
-- Redis work is per session and per key, not per event: a session hash is
-- read once (HMGET) and written once (HSET of the fields that change,
-- EXPIRE) per call, the credited-until marks are read with one MGET and
-- written once each, epoch hash increments are summed and written once per
-- field, the addresses go to each address set with one SADD, and each key's
-- EXPIRE is sent once. The session sets (the cap) are used directly, in
-- order, since the cap depends on every earlier event. The events come
-- packed in one binary argument (struct.unpack): no per-event ARGV strings,
-- and no number is formatted in Lua per event.
--
-- KEYS: every key the events use, each once; the events name them by index.
--   session hash   KeySession(user, info_hash_hex, peer_id_hex):
--                  up, down, seen (unix s), seeding ("1"/"0")
--   session zset   KeySessions(user, info_hash_hex):
--                  member peer_id_hex, score = seen; the session cap
--   credited-until KeyCredited(user, info_hash_hex): unix s
--   address set    KeyTorrentIPs(user, info_hash_hex, now_epoch): the
--                  addresses the user announced the torrent from
--   epoch hashes   KeyUserEpoch(user, e) for e = epoch_base, epoch_base+1,
--                  ..., consecutive from KEYS[epoch_key0]
-- ARGV[1]: one binary string, little-endian (struct.unpack; Go writes it in
-- Accountant.callArgs and appendEvent). Numbers are integers below 2^53.
--   header, 11 int64:
--   n              number of events
--   epoch_len_s    epoch e covers [e*L, (e+1)*L)
--   min_open_epoch epochs below it are sealed: never written
--   max_gap_s      longest announce gap that still counts as seeding
--   max_rate       bytes/s a counter may grow
--   max_sessions   tracked sessions per (user, torrent)
--   session_ttl_s  TTL of session hashes, sets and credited-until marks
--   epoch_ttl_s    TTL of every epoch hash and address set written
--   epoch_base     the epoch of KEYS[epoch_key0]
--   epoch_key0     index of the first epoch hash in KEYS
--   npools         number of pool lists
--   then npools pool lists: uint16 length + comma-separated pool ids
--   ("global" or "global,p7"; "" for none)
--   then per event:
--   int64  now            unix s of the announce
--   int64  first_epoch    epoch(now - max_gap_s) (>= epoch_base)
--   int64  now_epoch      epoch(now)
--   int64  size           torrent bytes (caps a download delta)
--   int64  weight         micro-points per seed second
--   int64  uploaded       cumulative, as reported
--   int64  downloaded     cumulative, as reported
--   int64  left           bytes left; 0 = seeding
--   uint8  stopped        1 when the session ends with this announce
--   uint16 pools          index of the event's pool list (1-based)
--   uint16 session        KEYS index of the session hash
--   uint16 sessions       KEYS index of the session zset
--   uint16 credited       KEYS index of the credited-until mark
--   uint16 addresses      KEYS index of the address set; 0: record none
--   40 bytes session_id   peer id hex (member of the session zset)
--   uint8 length + text   the announcing address ("" when none)
--   uint8 length + text   now, uploaded, downloaded in decimal: the strings
--                         written back (formatting a number in Lua costs
--                         more than the whole Redis command)
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
-- Globals used per event, as locals (a global is a table lookup).
local rcall, tonumber, unpack, KEYS = redis.call, tonumber, unpack, KEYS

-- unpack_le is struct.unpack for the formats below ('<' then i8, I2, B, cN
-- and c0), for Redis-protocol servers without the struct library (the dev
-- default's embedded store). Signed 8-byte values are read as two 32-bit
-- halves, exact below 2^53 like struct's.
local sbyte, ssub = string.byte, string.sub
local function unpack_le(f, s, pos)
  pos = pos or 1
  local out, n, i = {}, 0, 2 -- f[1] is '<'
  local flen = #f
  while i <= flen do
    local c = ssub(f, i, i)
    i = i + 1
    local digits = string.match(f, '^%d+', i)
    local size = tonumber(digits or '')
    if digits then
      i = i + #digits
    end
    if c == 'i' and size == 8 then
      local b1, b2, b3, b4, b5, b6, b7, b8 = sbyte(s, pos, pos + 7)
      if not b8 then
        error('account.lua: packed argument too short')
      end
      local lo = b1 + b2 * 256 + b3 * 65536 + b4 * 16777216
      local hi = b5 + b6 * 256 + b7 * 65536 + b8 * 16777216
      if hi >= 2147483648 then
        hi = hi - 4294967296
      end
      n = n + 1
      out[n] = hi * 4294967296 + lo
      pos = pos + 8
    elseif c == 'I' and size == 2 then
      local b1, b2 = sbyte(s, pos, pos + 1)
      if not b2 then
        error('account.lua: packed argument too short')
      end
      n = n + 1
      out[n] = b1 + b2 * 256
      pos = pos + 2
    elseif c == 'B' then
      local b1 = sbyte(s, pos)
      if not b1 then
        error('account.lua: packed argument too short')
      end
      n = n + 1
      out[n] = b1
      pos = pos + 1
    elseif c == 'c' then
      if size == 0 then -- the length is the value just read, which it replaces
        size = out[n]
        n = n - 1
      end
      if pos + size - 1 > #s then
        error('account.lua: packed argument too short')
      end
      n = n + 1
      out[n] = ssub(s, pos, pos + size - 1)
      pos = pos + size
    else
      error('account.lua: unsupported format ' .. c)
    end
  end
  n = n + 1
  out[n] = pos
  return unpack(out, 1, n)
end
local lib = rawget(_G, 'struct')
local sunpack = lib and lib.unpack or unpack_le
local mmax, mmin = math.max, math.min

-- fmt renders an integer exactly (tostring would use %.14g).
local function fmt(v)
  return string.format('%d', v)
end

local function exact(v)
  return v == math.floor(v) and v <= MAXINT and v >= -MAXINT
end

if #ARGV ~= 1 then
  error('account.lua: need one packed argument')
end
local P = ARGV[1]
local n, L, min_open, max_gap, max_rate, max_sessions, session_ttl, epoch_ttl, epoch_base, epoch_key0, npools, pos =
  sunpack('<i8i8i8i8i8i8i8i8i8i8i8', P)
for _, v in ipairs({ n, L, min_open, max_gap, max_rate, max_sessions, session_ttl, epoch_ttl, epoch_base, epoch_key0, npools }) do
  if not exact(v) then
    error('account.lua: a header number is not an integer below 2^53')
  end
end
if L <= 0 or n < 0 or npools < 0 then
  error('account.lua: need epoch_len_s > 0, n >= 0 and npools >= 0')
end
local session_ttl_s, epoch_ttl_s = fmt(session_ttl), fmt(epoch_ttl)

-- The epoch hash fields of each pool list: "pts:<pool>" per pool.
local pool_fields = {}
for j = 1, npools do
  local list
  list, pos = sunpack('<I2c0', P, pos)
  local f = {}
  for pool in string.gmatch(list, '[^,]+') do
    f[#f + 1] = 'pts:' .. pool
  end
  pool_fields[j] = f
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
local asked = {} -- per set: the session ids to ask (a repeat is harmless)
-- Credited-until marks: read with one MGET for every torrent a seeding
-- event may credit (cred_v, a number), written at the end when moved
-- (cred_s, the string to write).
local cred_v, cred_s, cred_list = {}, {}, {}
-- Address sets: the addresses to add, per set.
local ips, ip_order = {}, {}

-- Where each event's record starts in P: pass 2 unpacks it again (cheaper
-- in Lua than keeping 19 fields per event in tables).
local EVENT = '<i8i8i8i8i8i8i8i8BI2I2I2I2I2c40Bc0Bc0Bc0Bc0'
local at = {}

-- Pass 1: read and check every event before anything is written (a bad
-- argument is a bug on the Go side: fail the whole call, write nothing), and
-- gather the sessions whose membership is needed. (That the decimal strings
-- match the numbers is TestPackedLayout's to check: parsing them here would
-- cost more than the rest of the check.)
for i = 1, n do
  at[i] = pos
  local now, first, now_epoch, size, weight, up, down, left, _, pl, si, se, cr, ipk, sid, ip
  now, first, now_epoch, size, weight, up, down, left, _, pl, si, se, cr, ipk, sid, ip, _, _, _, pos = sunpack(EVENT, P, pos)
  -- int64 fields unpack to integers; they must also be exact (below 2^53).
  if not (now > 0 and now <= MAXINT and first >= -MAXINT and now_epoch <= MAXINT and size >= 0 and size <= MAXINT
      and weight >= 0 and weight <= MAXINT and up >= 0 and up <= MAXINT and down >= 0 and down <= MAXINT
      and left >= 0 and left <= MAXINT) then
    error('account.lua: event ' .. i .. ': a number is out of range')
  end
  if now < now_epoch * L or now >= (now_epoch + 1) * L or first > now_epoch then
    error('account.lua: event ' .. i .. ': now ' .. fmt(now) .. ' is not in epoch ' .. fmt(now_epoch))
  end
  epoch_key(first)
  epoch_key(now_epoch)
  local set, cred = KEYS[se], KEYS[cr]
  if not (KEYS[si] and set and cred and pool_fields[pl]) then
    error('account.lua: event ' .. i .. ' names no key or pool list')
  end
  local list = asked[set]
  if list == nil then
    asked[set] = { sid }
  else
    list[#list + 1] = sid
  end
  if left == 0 and cred_v[cred] == nil then
    cred_v[cred] = false
    cred_list[#cred_list + 1] = cred
  end
  if ipk ~= 0 then
    local k = KEYS[ipk]
    if k == nil or ip == '' then
      error('account.lua: event ' .. i .. ' names no address set or address')
    end
    local list = ips[k]
    if list == nil then
      ips[k] = { ip }
      ip_order[#ip_order + 1] = k
    else
      local dup = false
      for j = 1, #list do
        if list[j] == ip then
          dup = true
        end
      end
      if not dup then
        list[#list + 1] = ip
      end
    end
  end
end
if pos ~= #P + 1 then
  error('account.lua: ' .. (#P + 1 - pos) .. ' bytes left over')
end
for set, list in pairs(asked) do
  local scores = rcall('ZMSCORE', set, unpack(list))
  local m = {}
  for j = 1, #list do
    m[list[j]] = scores[j] and tonumber(scores[j]) or false
  end
  members[set] = m
end
if #cred_list > 0 then
  local v = rcall('MGET', unpack(cred_list))
  for j = 1, #cred_list do
    cred_v[cred_list[j]] = tonumber(v[j] or '0') or 0
  end
end

-- Scores to set, per session set, written with one ZADD per set: before
-- anything else reads or changes the set in Redis, and at the end.
local pending = {}
local function flush_scores(set)
  local p = pending[set]
  if p ~= nil and #p > 0 then
    rcall('ZADD', set, unpack(p))
  end
  pending[set] = nil
end
local function add_score(set, score, score_s, sid)
  local m = members[set]
  set_ttl[set] = true
  if m[sid] == score then
    return -- already the member's score (in Redis or pending): nothing to write
  end
  local p = pending[set]
  if p == nil then
    p = {}
    pending[set] = p
  end
  p[#p + 1] = score_s
  p[#p + 1] = sid
  if not m[sid] and card[set] then
    card[set] = card[set] + 1
  end
  m[sid] = score
  if pruned[set] and score < pruned[set] then
    pruned[set] = nil
  end
end
local function remove(set, sid)
  flush_scores(set)
  local r = rcall('ZREM', set, sid)
  if card[set] then
    card[set] = card[set] - r
  end
  members[set][sid] = false
end

-- Session hashes: read on first use, written at the end. Values are kept
-- as numbers and as the strings to write back (*_s); the strings as read
-- (o_*) tell which fields a write changes. op: nil (untouched), 'save'
-- (HSET + EXPIRE), 'del', 'touch' (EXPIRE).
local sessions = {}
local function session(k)
  local s = sessions[k]
  if s == nil then
    local h = rcall('HMGET', k, 'up', 'down', 'seen', 'seeding')
    s = { up = tonumber(h[1]), down = tonumber(h[2]), seen = tonumber(h[3]), seeding = h[4], op = false,
      o_up = h[1], o_down = h[2], o_seen = h[3], o_seeding = h[4], up_s = false, down_s = false, seen_s = false }
    sessions[k] = s
  end
  return s
end

-- A credited-until mark (every one a seeding event may need is read up front).
local function cred_get(k)
  local v = cred_v[k]
  if not v then
    v = tonumber(rcall('GET', k) or '0') or 0
    cred_v[k] = v
  end
  return v
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
    rcall('HINCRBY', k, field, fmt(cur))
    cur = 0
  end
  t[field] = cur + v
end

-- The event being accounted (set by the main loop).
local now, first, now_epoch, size, weight, uploaded, downloaded, left, stopped, sid, fields, sess_k, set_k, cred_k
local now_s, up_s, down_s

local function credit(e, secs)
  local k = epoch_key(e)
  hincr(k, 'seed_s', secs)
  if weight > 0 then
    for j = 1, #fields do
      hincr(k, fields[j], secs * weight)
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
  add_score(set_k, now, now_s, sid)
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
      c = rcall('ZCARD', set_k)
      card[set_k] = c
    end
    local floor = now - max_gap
    if c >= max_sessions and (pruned[set_k] == nil or floor > pruned[set_k]) then
      flush_scores(set_k)
      c = c - rcall('ZREMRANGEBYSCORE', set_k, '-inf', '(' .. fmt(floor))
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
      if not s.op then
        s.op = 'touch'
      end
      add_score(set_k, seen, s.o_seen, sid)
    end
    return 5, 0, 0, 0, 0
  end

  local elapsed = now - seen
  local rate_cap = max_rate * elapsed
  local d_up = mmin(uploaded - up, rate_cap)
  local d_down = mmin(downloaded - down, rate_cap, size)
  local credited, sealed = 0, 0

  -- Seed time: a seeder at both ends of a gap no longer than max_gap. The
  -- interval starts at the later of seen and credited-until, so a user earns
  -- once per second on a torrent however many clients it runs.
  if s.seeding == '1' and left == 0 and elapsed > 0 and elapsed <= max_gap then
    local from = mmax(seen, cred_get(cred_k))
    if now > from then
      for e = first, now_epoch do
        local lo = mmax(from, e * L)
        local hi = mmin(now, (e + 1) * L)
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
      cred_v[cred_k], cred_s[cred_k] = now, now_s
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
  local stop, pl, si, se, cr, _
  now, first, now_epoch, size, weight, uploaded, downloaded, left, stop, pl, si, se, cr, _, sid, _, now_s, up_s, down_s =
    sunpack(EVENT, P, at[i])
  stopped, fields, sess_k, set_k, cred_k = stop == 1, pool_fields[pl], KEYS[si], KEYS[se], KEYS[cr]
  local code, credited, d_up, d_down, sealed = account()
  local r = (i - 1) * 5
  out[r + 1], out[r + 2], out[r + 3], out[r + 4], out[r + 5] = code, credited, d_up, d_down, sealed
end

-- Deferred writes.
for _, k in ipairs(ip_order) do
  rcall('SADD', k, unpack(ips[k]))
  rcall('EXPIRE', k, epoch_ttl_s)
end
for set in pairs(pending) do
  flush_scores(set)
end
for _, k in ipairs(incr_order) do
  for field, v in pairs(incr[k]) do
    rcall('HINCRBY', k, field, fmt(v))
  end
  rcall('EXPIRE', k, epoch_ttl_s)
end
for k, v in pairs(cred_s) do
  rcall('SET', k, v, 'EX', session_ttl_s)
end
for k, s in pairs(sessions) do
  if s.op == 'save' then
    -- Only the fields that change: the hash still holds what was read (a
    -- session deleted and saved again in this call was never deleted).
    local args, na = { k, false, false, false, false, false, false, false, false }, 1
    if s.up_s ~= s.o_up then
      args[na + 1], args[na + 2], na = 'up', s.up_s, na + 2
    end
    if s.down_s ~= s.o_down then
      args[na + 1], args[na + 2], na = 'down', s.down_s, na + 2
    end
    if s.seen_s ~= s.o_seen then
      args[na + 1], args[na + 2], na = 'seen', s.seen_s, na + 2
    end
    if s.seeding ~= s.o_seeding then
      args[na + 1], args[na + 2], na = 'seeding', s.seeding, na + 2
    end
    if na > 1 then
      rcall('HSET', unpack(args, 1, na))
    end
    rcall('EXPIRE', k, session_ttl_s)
  elseif s.op == 'del' then
    rcall('DEL', k)
  elseif s.op == 'touch' then
    rcall('EXPIRE', k, session_ttl_s)
  end
end
for k in pairs(set_ttl) do
  rcall('EXPIRE', k, session_ttl_s)
end
return out
