-- rescan.lua: move the deposit watcher's cursor back, never forward, in one
-- step (a WATCH loop lost to the watcher's own cursor moves under load).
-- KEYS[1] = the cursor (sp:deposit:cursor); ARGV[1] = the block to read
-- from (a decimal integer >= 0, checked by the caller).
-- Returns {moved (1 or 0), the cursor before (-1: no scan yet)}.
local from = tonumber(ARGV[1])
local cur = redis.call('GET', KEYS[1])
if cur then
  cur = tonumber(cur)
  if from >= cur then
    return {0, cur}
  end
else
  cur = -1
end
redis.call('SET', KEYS[1], ARGV[1])
return {1, cur}
