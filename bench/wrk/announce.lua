-- wrk script for bench/compare.sh: every request is an announce of a
-- different peer (info_hash, peer_id and port vary), drawn from the same
-- population as bench/udpload: torrent i from an exponential popularity head
-- (plus a uniform share), peer j of P per torrent, 75 % seeders, numwant 30.
--
--   wrk -t2 -c50 -d10s -s bench/wrk/announce.lua http://127.0.0.1:6969 \
--       -- HASHES_FILE PATH [PEERS] [NUMWANT] [close]
--
-- HASHES_FILE: hex info hashes one a line (udpload -print-hashes).
-- PATH: "/announce/<passkey>" for seedpay, "/announce" for opentracker and
-- chihaya. PEERS: peers per torrent (default 100, at most 64000).
-- "close" as the fifth argument sends "Connection: close" (one announce per
-- TCP connection, as real clients announce).
-- done() prints one machine-readable line: "RESULT key=value ...".

local hashes = {}      -- percent-encoded info hashes
local path = "/announce"
local peers = 100
local numwant = 30
local head = 0.05      -- mean of the exponential head, fraction of torrents
local uniform = 0.2    -- share spread uniformly over all torrents
local close = false
-- Per-thread counters: globals, since done() reads them with thread:get.
non200 = 0
failures = 0

local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

local function load_hashes(file)
  local f = assert(io.open(file, "r"), "cannot open " .. file)
  for line in f:lines() do
    local hex = line:match("^%s*(%x+)%s*$")
    if hex and #hex == 40 then
      hashes[#hashes + 1] = hex:gsub("(%x%x)", "%%%1")
    end
  end
  f:close()
  assert(#hashes > 0, "no info hashes in " .. file)
end

function init(args)
  load_hashes(args[1] or os.getenv("BENCH_HASHES") or "hashes.txt")
  path = args[2] or path
  peers = tonumber(args[3] or "") or peers
  numwant = tonumber(args[4] or "") or numwant
  close = args[5] == "close"
  assert(peers >= 1 and peers <= 64000, "PEERS must be 1..64000")
  math.randomseed(os.time() * 1000 + (id or 0))
end

-- peer_tail(i, j): 12 hex digits, the same 4-round Feistel network on 24-bit
-- halves as udpload's peerTail (bench/udpload/workload.go): distinct peers
-- get distinct ids, and every byte varies as in a real client's random tail.
local bxor = bit.bxor
local feistel_keys = { 1234567, 7654321, 3141592, 2718281 }
function peer_tail(i, j)
  local l, r = i, j
  for k = 1, 4 do
    l, r = r, bxor(l, (r * 40503 + feistel_keys[k]) % 16777216)
  end
  return string.format("%06x%06x", l, r)
end

local function pick_torrent(n)
  if math.random() >= uniform then
    local i = math.floor(-math.log(1 - math.random()) * head * n)
    if i < n then return i end
  end
  return math.random(0, n - 1)
end

function request()
  local n = #hashes
  local i = pick_torrent(n)
  local j = math.random(0, peers - 1)
  local left = 1073741824
  if (i + j) % 4 ~= 0 then left = 0 end -- 75 % seeders, fixed per peer
  local q = path .. "?info_hash=" .. hashes[i + 1] ..
    "&peer_id=-BW0001-" .. peer_tail(i, j) ..
    "&port=" .. (1024 + j) ..
    "&uploaded=0&downloaded=0&left=" .. left ..
    "&numwant=" .. numwant .. "&compact=1"
  if close then
    return wrk.format("GET", q, { ["Connection"] = "close" })
  end
  return wrk.format("GET", q)
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  elseif body and body:find("failure reason", 1, true) then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local n2, fl = 0, 0
  for _, t in ipairs(threads) do
    n2 = n2 + (t:get("non200") or 0)
    fl = fl + (t:get("failures") or 0)
  end
  local secs = summary.duration / 1e6
  local e = summary.errors
  local ok = summary.requests - n2 - fl
  io.write(string.format(
    "RESULT requests_per_s=%.0f ok_per_s=%.0f p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f" ..
    " requests=%d non200=%d failures=%d err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d elapsed_s=%.2f\n",
    summary.requests / secs, ok / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    summary.requests, n2, fl, e.connect, e.read, e.write, e.status, e.timeout, secs))
end
