-- flush.lua: accounting aggregates of one or more users from a tracker in
-- local session mode (LocalFlusher, localflush.go), applied at most once.
-- The tracker computed the seed seconds, points and byte deltas in memory
-- (LocalAccountant.Apply gives account.lua's outcomes); this script only
-- adds them, so Redis work is per user and flush, not per announce.
--
-- A call that failed is retried with the same sequence number, and the
-- tracker cannot tell a failure before the script ran from one after: the
-- token makes a retry a no-op when the first try was applied.
--   mode "max" (one user per call, the token in the user's slot, for Redis
--   Cluster): apply when seq > the token's last applied seq. One call per
--   user per flush, and a flush is retried until it lands before the next.
--   mode "chain" (several users per call, one token per tracker instance,
--   single Redis): apply only when seq is the next after max(last, base-1),
--   base being the first seq of the flush (every seq below it is settled,
--   so a token lost with Redis data does not stall the chain); a seq at or
--   below last was applied (0); a later one waits for the calls before it
--   (-1), so a call that failed in the middle of a pipeline is never
--   skipped. The lease is checked here, with the writes (-2: not ours).
-- The token is written first: a call can only fail after it on a Redis
-- error the tracker rules out (bounded argument counts, increments below
-- 2^53), and then it under-credits rather than applying twice.
--
-- KEYS[1]  the token: the last applied seq
-- KEYS[2]  chain mode: the lease (sp:acct:local)
-- then     every user's epoch hashes, then address sets, user after user,
--          in the order of ARGV
-- ARGV: seq, mode, token_ttl_s, epoch_ttl_s, base, lease value, nusers,
-- then per user: nh, then nh times (nf, then nf field/increment pairs),
-- then ni, then ni times (n, then n addresses).
-- Returns 1 applied, 0 already applied, -1 out of order, -2 lease not held
-- (nothing written for -1 and -2).

local seq, mode, base, nusers = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[5]), tonumber(ARGV[7])
if seq == nil or base == nil or nusers == nil or nusers < 0 or (mode ~= 'max' and mode ~= 'chain') then
  error('flush.lua: bad header')
end
local k0 = 1 -- the last key before the users'
if mode == 'chain' then
  k0 = 2
  if redis.call('GET', KEYS[2]) ~= ARGV[6] then
    return -2
  end
end
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if last == nil then
  error('flush.lua: token is not a number')
end
if seq <= last then
  return 0
end
if mode == 'chain' and seq ~= math.max(last, base - 1) + 1 then
  return -1
end

-- Check the whole layout before writing anything.
local a, k = 8, k0
for _ = 1, nusers do
  local nh = tonumber(ARGV[a])
  if nh == nil or nh < 0 then
    error('flush.lua: bad epoch hash count')
  end
  a = a + 1
  for _ = 1, nh do
    local nf = tonumber(ARGV[a])
    k = k + 1
    if nf == nil or nf < 0 or KEYS[k] == nil then
      error('flush.lua: bad epoch hash')
    end
    a = a + 1 + 2 * nf
  end
  local ni = tonumber(ARGV[a])
  if ni == nil or ni < 0 then
    error('flush.lua: bad address set count')
  end
  a = a + 1
  for _ = 1, ni do
    local n = tonumber(ARGV[a])
    k = k + 1
    if n == nil or n < 1 or n > 256 or KEYS[k] == nil then
      error('flush.lua: bad address set')
    end
    a = a + 1 + n
  end
end
if a ~= #ARGV + 1 or k ~= #KEYS then
  error('flush.lua: argument count does not match the layout')
end

redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
local ttl = ARGV[4]
a, k = 8, k0
for _ = 1, nusers do
  local nh = tonumber(ARGV[a])
  a = a + 1
  for _ = 1, nh do
    k = k + 1
    local key, nf = KEYS[k], tonumber(ARGV[a])
    a = a + 1
    for _ = 1, nf do
      redis.call('HINCRBY', key, ARGV[a], ARGV[a + 1])
      a = a + 2
    end
    redis.call('EXPIRE', key, ttl)
  end
  local ni = tonumber(ARGV[a])
  a = a + 1
  for _ = 1, ni do
    k = k + 1
    local n = tonumber(ARGV[a])
    redis.call('SADD', KEYS[k], unpack(ARGV, a + 1, a + n))
    redis.call('EXPIRE', KEYS[k], ttl)
    a = a + 1 + n
  end
end
return 1
