-- Renew or release the settler's leader lock only while we still hold it.
-- KEYS[1] lock key; ARGV[1] our fencing token; ARGV[2] new TTL in ms, or 0 to release.
-- Returns 1 when the lock was ours (renewed or released), 0 otherwise.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if tonumber(ARGV[2]) == 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
