-- receipt.lua: credit one verified upload receipt (signature, keys, owners,
-- torrent and time window are checked in Go before this runs). Atomic per
-- receipt. Keys span the torrent's slot {r:<ih>}, both users' slots and the
-- epoch's: the receipt ledger, like the payout outbox, assumes one primary.
--
-- KEYS
--   [1] pair      sp:{r:<ih>}:p:<up key>:<down key>:<session>  last cumulative bytes
--   [2] dl_total  sp:{r:<ih>}:dl:<down user>                  bytes credited from this downloader, all uploaders
--   [3] pair_ep   sp:{r:<ih>}:pe:<up user>:<down user>:<n>     bytes credited to this pair in epoch n
--   [4] up_epoch  sp:{u:<up user>}:e:<n>                       uploader's epoch hash (up_verified, pts:<pool>)
--   [5] ep_users  sp:{e:<n>}:users
--   [6] up_ips_n  [7] up_ips_prev  [8] down_ips_n  [9] down_ips_prev   KeyTorrentIPs sets
-- ARGV
--   [1] cumulative      bytes the downloader says it received in this session
--   [2] dl_cap          size x max_redownload
--   [3] pair_cap        per pair per epoch
--   [4] uploader_cap    per uploader per epoch
--   [5] weight          micro-points per GiB
--   [6] pools           comma-separated
--   [7] ttl_s           TTL of every key written
--   [8] up_user         member for ep_users
-- Returns {code, credited_bytes}
--   code 1 credited (maybe partly: a cap bound)
--        2 not_announced   one of the users did not announce the torrent in n or n-1
--        3 shared_ip       the users announced from a common address
--        4 not_monotonic   cumulative <= the last receipt of this pair and session (replay)
--        5 capped          a cap left nothing to credit (the receipt is consumed)

local MAXINT = 9007199254740991

local function int(i)
  local v = tonumber(ARGV[i])
  if v == nil or v ~= math.floor(v) or v < 0 or v > MAXINT then
    error('receipt.lua: ARGV[' .. i .. '] is not a non-negative integer below 2^53: ' .. tostring(ARGV[i]))
  end
  return v
end

local function fmt(v)
  return string.format('%d', v)
end

local cumulative = int(1)
local dl_cap, pair_cap, up_cap = int(2), int(3), int(4)
local weight = int(5)
local pools = ARGV[6]
local ttl = int(7)

-- Both announced the torrent this epoch or the last.
local up_ips = redis.call('SUNION', KEYS[6], KEYS[7])
local down_ips = redis.call('SUNION', KEYS[8], KEYS[9])
if #up_ips == 0 or #down_ips == 0 then
  return {2, 0}
end
local seen = {}
for _, ip in ipairs(up_ips) do
  seen[ip] = true
end
for _, ip in ipairs(down_ips) do
  if seen[ip] then
    return {3, 0}
  end
end

local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if cumulative <= last then
  return {4, 0}
end
local delta = cumulative - last
redis.call('SET', KEYS[1], fmt(cumulative), 'EX', ttl)

local dl_total = tonumber(redis.call('GET', KEYS[2]) or '0')
local pair_total = tonumber(redis.call('GET', KEYS[3]) or '0')
local up_total = tonumber(redis.call('HGET', KEYS[4], 'up_verified') or '0')
local credit = math.min(delta, dl_cap - dl_total, pair_cap - pair_total, up_cap - up_total)
if credit <= 0 then
  return {5, 0}
end

redis.call('INCRBY', KEYS[2], fmt(credit))
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('INCRBY', KEYS[3], fmt(credit))
redis.call('EXPIRE', KEYS[3], ttl)
redis.call('HINCRBY', KEYS[4], 'up_verified', fmt(credit))
-- points = credit (bytes) / 2^30 x weight, in KiB first so the product stays
-- below 2^53 (credit <= 2^40 by the caps' validation, weight <= 2^20).
local pts = math.floor(math.floor(credit / 1024) * weight / 1048576)
if pts > 0 then
  for pool in string.gmatch(pools, '[^,]+') do
    redis.call('HINCRBY', KEYS[4], 'pts:' .. pool, fmt(pts))
  end
end
redis.call('EXPIRE', KEYS[4], ttl)
redis.call('SADD', KEYS[5], ARGV[8])
redis.call('EXPIRE', KEYS[5], ttl)
return {1, credit}
