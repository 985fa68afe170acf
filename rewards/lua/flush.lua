-- flush.lua: one user's accounting aggregates from a tracker in local
-- session mode (LocalFlusher, localflush.go), applied at most once. The
-- tracker computed the seed seconds, points and byte deltas in memory
-- (LocalAccountant.Apply gives account.lua's outcomes); this script only
-- adds them, so Redis work is per user and flush, not per announce.
--
-- A flush that failed is retried with the same sequence number, and the
-- tracker cannot tell a failure before the script ran from one after: the
-- per-(user, instance) token makes the retry a no-op when the first try
-- was applied. Sequence numbers of one instance only grow, and a flush is
-- retried until it lands before the next one is sent.
--
-- KEYS[1]        token sp:{u:<user>}:fl:<instance>: the last applied seq
-- KEYS[2..1+nh]  the user's epoch hashes, in the order of ARGV
-- KEYS[2+nh..]   address sets (KeyTorrentIPs), in the order of ARGV
-- ARGV: seq, token_ttl_s, epoch_ttl_s, nh, then per epoch hash: nf and nf
-- (field, integer increment) pairs; then ni, then per address set: n and
-- n addresses. Every key is in the user's slot.
-- Returns 1 when applied, 0 when this seq (or a later one) already was.

local seq = tonumber(ARGV[1])
local nh = tonumber(ARGV[4])
if seq == nil or nh == nil or nh < 0 then
  error('flush.lua: bad header')
end
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
if last ~= nil and last >= seq then
  return 0
end
-- Check the layout before writing anything.
local a = 5
for i = 1, nh do
  local nf = tonumber(ARGV[a])
  if nf == nil or nf < 0 or KEYS[1 + i] == nil then
    error('flush.lua: bad epoch hash ' .. i)
  end
  a = a + 1 + 2 * nf
end
local ni = tonumber(ARGV[a])
if ni == nil or ni < 0 then
  error('flush.lua: bad address count')
end
local b = a + 1
for i = 1, ni do
  local n = tonumber(ARGV[b])
  if n == nil or n < 1 or KEYS[1 + nh + i] == nil then
    error('flush.lua: bad address set ' .. i)
  end
  b = b + 1 + n
end
if b ~= #ARGV + 1 or #KEYS ~= 1 + nh + ni then
  error('flush.lua: argument count does not match the layout')
end

redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local ttl = ARGV[3]
a = 5
for i = 1, nh do
  local k, nf = KEYS[1 + i], tonumber(ARGV[a])
  a = a + 1
  for _ = 1, nf do
    redis.call('HINCRBY', k, ARGV[a], ARGV[a + 1])
    a = a + 2
  end
  redis.call('EXPIRE', k, ttl)
end
a = a + 1
for i = 1, ni do
  local k, n = KEYS[1 + nh + i], tonumber(ARGV[a])
  redis.call('SADD', k, unpack(ARGV, a + 1, a + n))
  redis.call('EXPIRE', k, ttl)
  a = a + 1 + n
end
return 1
