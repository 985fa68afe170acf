#!/usr/bin/env bash
# Side-by-side tracker benchmark: opentracker (Debian), upstream chihaya
# (built from the module proxy into a temp dir) and seedpay with rewards
# accounting off and on, under the same UDP load (bench/udpload) and HTTP load
# (wrk + bench/wrk/announce.lua), first pinned (tracker and its Redis on CPU 0,
# load on CPU 1), then unpinned. Then a "1M peers" step (pinned): a fresh
# tracker is filled with ~1M distinct peers over UDP and its RSS read.
# "seedpay-on" accounts in the tracker's memory (rewards.sessions: local, the
# default); "seedpay-redis" is accounting on with rewards.sessions: redis
# (account.lua per announce, the mode for several instances).
# "seedpay-receipts" is seedpay with accounting on while bench/receiptload
# posts signed upload receipts at a fixed rate (default 1000/s, batches of
# 100) through the whole UDP and HTTP measurement; its ratio to "seedpay-on"
# is the cost of receipts to announce throughput (printed after the table).
# Prints ONE markdown table (every figure also as a ratio to opentracker in
# the same run) and the details behind it.
#
#   bench/compare.sh             # ~10 s per measurement, about 7 minutes
#   bench/compare.sh --quick     # ~2 s per measurement, 100k-peer fill: a smoke test
#
# Options / environment:
#   --quick                 2 s per measurement, fill 100 peers/torrent instead of 1000
#   --duration N            seconds per measurement (env BENCH_DURATION; default 10, max 60)
#   --no-1m                 skip the 1M-peers step
#   --trackers "A B"        subset of: opentracker chihaya seedpay-off seedpay-on seedpay-redis seedpay-receipts (env BENCH_TRACKERS)
#   --receipt-rate N        receipts/s for seedpay-receipts (env BENCH_RECEIPT_RATE; default 1000)
#   --receipt-batch N       receipts per POST (env BENCH_RECEIPT_BATCH; default 100)
#   --rev REV               build seedpay and the load generators from commit REV (git archive into the
#                           work dir) instead of the work tree, e.g. --rev HEAD (env BENCH_REV)
#   --no-latency            skip the open-loop latency step (below)
#   --no-http               skip the wrk (HTTP) measurements
#   --lat-rates "R1 R2"     also run the open-loop step at these fixed requests/s (env BENCH_LAT_RATES)
#   --rounds N              measure every tracker N times (1..10; env BENCH_ROUNDS; default 1), pinned
#                           and unpinned in each round, the trackers' order rotated from round to round,
#                           then print the median and range of each target's same-round ratio
#   --profile               take a CPU profile of seedpay (serve --pprof) through each of its UDP and
#                           HTTP measurements, into the work dir (implies --keep): cpu-udp.pprof,
#                           cpu-http.pprof, cpu-httpclose.pprof (go tool pprof), and an execution
#                           trace through the half-load latency step, trace-lat.out (go tool trace)
#   --keep                  keep the work dir (logs, configs) instead of deleting it
#   --no-capture            no packet capture beside the half-load latency step (below)
# Latency at half load: after each tracker's closed-loop UDP run, udpload runs
# open loop (-rate) at half of the responses/s that tracker just reached, for
# the same duration, latency from each request's scheduled send time (to the
# reader's clock, and to the kernel's receive stamp, which leaves out the
# reader's wake-up); its p50/p90/p99/p99.9 are printed in a second table.
# Beside the half-load step tcpdump captures a 1/16 sample of the requests
# and their replies on lo (udpload -capture-filter), pinned like the load;
# udpload -capture reads it: the latency in the tracker, from the request's
# capture stamp (inside the generator's send) to its reply's (inside the
# tracker's), with the generator's own delays left out.
# Everything runs on loopback; every process started here is killed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CHIHAYA_MOD=github.com/chihaya/chihaya
CHIHAYA_VERSION=v1.0.1-0.20230615203145-2f794401e44a

DURATION=${BENCH_DURATION:-}
TRACKERS=${BENCH_TRACKERS:-"opentracker chihaya seedpay-off seedpay-on seedpay-redis seedpay-receipts"}
RECEIPT_RATE=${BENCH_RECEIPT_RATE:-1000}
RECEIPT_BATCH=${BENCH_RECEIPT_BATCH:-100}
REV=${BENCH_REV:-}
QUICK=0
DO_1M=1
DO_LAT=1
DO_HTTP=1
LAT_RATES=${BENCH_LAT_RATES:-}
ROUNDS=${BENCH_ROUNDS:-1}
KEEP=0
PROFILE=0
CAPTURE=1
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --duration) DURATION=${2:?--duration needs seconds}; shift ;;
    --duration=*) DURATION=${1#*=} ;;
    --no-1m) DO_1M=0 ;;
    --no-latency) DO_LAT=0 ;;
    --no-http) DO_HTTP=0 ;;
    --no-capture) CAPTURE=0 ;;
    --lat-rates) LAT_RATES=${2:?}; shift ;;
    --lat-rates=*) LAT_RATES=${1#*=} ;;
    --trackers) TRACKERS=${2:?}; shift ;;
    --trackers=*) TRACKERS=${1#*=} ;;
    --receipt-rate) RECEIPT_RATE=${2:?}; shift ;;
    --receipt-rate=*) RECEIPT_RATE=${1#*=} ;;
    --receipt-batch) RECEIPT_BATCH=${2:?}; shift ;;
    --receipt-batch=*) RECEIPT_BATCH=${1#*=} ;;
    --rounds) ROUNDS=${2:?--rounds needs a count}; shift ;;
    --rounds=*) ROUNDS=${1#*=} ;;
    --rev) REV=${2:?}; shift ;;
    --rev=*) REV=${1#*=} ;;
    --keep) KEEP=1 ;;
    --profile) PROFILE=1 KEEP=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$DURATION" ]; then
  if [ $QUICK = 1 ]; then DURATION=2; else DURATION=10; fi
fi
case $DURATION in ''|*[!0-9]*) echo "compare.sh: duration must be whole seconds" >&2; exit 2 ;; esac
[ "$DURATION" -ge 1 ] && [ "$DURATION" -le 60 ] || { echo "compare.sh: duration must be 1..60 s" >&2; exit 2; }
for r in $LAT_RATES; do
  case $r in ''|*[!0-9]*) echo "compare.sh: --lat-rates takes whole numbers" >&2; exit 2 ;; esac
  [ "$r" -ge 100 ] && [ "$r" -le 1000000 ] || { echo "compare.sh: --lat-rates must be 100..1000000" >&2; exit 2; }
done
case $ROUNDS in ''|*[!0-9]*) echo "compare.sh: --rounds takes a whole number" >&2; exit 2 ;; esac
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 10 ] || { echo "compare.sh: --rounds must be 1..10" >&2; exit 2; }
[ -z "$LAT_RATES" ] || [ $DO_LAT = 1 ] || { echo "compare.sh: --lat-rates needs the latency step" >&2; exit 2; }
for t in $TRACKERS; do
  case $t in opentracker|chihaya|seedpay-off|seedpay-on|seedpay-redis|seedpay-receipts) ;; *) echo "compare.sh: unknown tracker $t" >&2; exit 2 ;; esac
done
if [ -n "$REV" ]; then
  REV=$(git -C "$ROOT" rev-parse --verify --quiet "$REV^{commit}") || { echo "compare.sh: --rev: no such commit" >&2; exit 2; }
fi
case $RECEIPT_RATE$RECEIPT_BATCH in *[!0-9]*) echo "compare.sh: receipt rate and batch must be whole numbers" >&2; exit 2 ;; esac
[ "$RECEIPT_RATE" -ge 1 ] && [ "$RECEIPT_RATE" -le 100000 ] && [ "$RECEIPT_BATCH" -ge 1 ] && [ "$RECEIPT_BATCH" -le 1000 ] \
  || { echo "compare.sh: --receipt-rate must be 1..100000, --receipt-batch 1..1000" >&2; exit 2; }

# The load: the same population and mix for every tracker.
TORRENTS=1000            # info hashes (udpload -print-hashes)
PEERS=100                # peers per torrent in the throughput runs: 100k peers, filled before measuring
FILL_PEERS=1000          # peers per torrent in the 1M step: 1,000,000 peers
[ $QUICK = 1 ] && FILL_PEERS=100
FILL_MAX=120             # seconds a fill may take at most
SOCKETS=64               # udpload sockets ...
WINDOW=2                 # ... x requests in flight each: 128, below a tracker socket's default receive buffer
LAT_SOCKETS=16           # open-loop latency step: sockets ...
LAT_WINDOW=64            # ... x window: only a bound; at half load a few requests are in flight
# The pacer sleeps at least this long between sends (udpload -pace-quantum):
# a wake-up per request (every 7 µs at 140k/s) cost the generator's core more
# than it has, and it fell 1-2 ms behind at half of peak; a request is now up
# to 20 µs late, which counts in its latency.
LAT_QUANTUM=20us
WRK_THREADS=2
WRK_CONNS=50
NUMWANT=30

START_TIME=$(date +%s)
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
WORK=$(mktemp -d /tmp/seedpay-bench.XXXXXX)
LOGS=$WORK/logs
mkdir -p "$LOGS"
PIDS=()
LOADS=() # 1-minute load average at the start of each throughput measurement

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
TICKS=$(getconf CLK_TCK)

# ---------------------------------------------------------------- install
install_missing() {
  local need=() c
  command -v opentracker >/dev/null || need+=(opentracker)
  command -v wrk >/dev/null || need+=(wrk)
  command -v redis-server >/dev/null || need+=(redis-server)
  command -v curl >/dev/null || need+=(curl)
  command -v taskset >/dev/null || need+=(util-linux)
  command -v ss >/dev/null || need+=(iproute2)
  if [ $CAPTURE = 1 ] && ! command -v tcpdump >/dev/null; then need+=(tcpdump); fi
  if [ ${#need[@]} -gt 0 ]; then
    log "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  for c in opentracker wrk redis-server curl taskset ss go $([ $CAPTURE = 1 ] && echo tcpdump); do
    command -v "$c" >/dev/null || die "$c is missing"
  done
}

build() {
  local src=$ROOT
  if [ -n "$REV" ]; then
    src=$WORK/src
    mkdir -p "$src"
    git -C "$ROOT" archive "$REV" | tar -x -C "$src" || die "git archive $REV failed"
    log "building from commit ${REV:0:12} (git archive), not the work tree"
  fi
  log "building seedpay, udpload and receiptload"
  (cd "$src" && go build -o "$WORK/seedpay" ./cmd/seedpay && go build -o "$WORK/udpload" ./bench/udpload \
    && go build -o "$WORK/receiptload" ./bench/receiptload) \
    || die "build failed"
  "$WORK/udpload" -print-hashes -torrents $TORRENTS >"$WORK/hashes.txt"
  has chihaya || return 0
  log "building upstream chihaya $CHIHAYA_VERSION in a throwaway module"
  local mod=$WORK/chihaya-build
  mkdir -p "$mod"
  (
    cd "$mod"
    export GOFLAGS=-mod=mod
    go mod init seedpay-bench/chihaya >/dev/null 2>&1
    printf '//go:build tools\n\npackage tools\n\nimport _ "%s/cmd/chihaya"\n' "$CHIHAYA_MOD" >tools.go
    go get "$CHIHAYA_MOD@$CHIHAYA_VERSION" && go mod tidy && go build -o "$WORK/chihaya" "$CHIHAYA_MOD/cmd/chihaya"
  ) >"$LOGS/chihaya-build.log" 2>&1 || { tail -20 "$LOGS/chihaya-build.log" >&2; die "chihaya build failed"; }
}

# ---------------------------------------------------------------- trackers
# start_TRACKER sets: TPID (tracker pid), XPID (its Redis or ""), UDP_ADDR,
# HTTP_URL, HTTP_PATH, PASSKEY, API (seedpay's admin API or "").
start_opentracker() {
  local dir=$WORK/opentracker port
  mkdir -p "$dir"
  cp "$WORK/hashes.txt" "$dir/whitelist"   # format: one hex info hash a line
  chmod 755 "$dir"; chmod 644 "$dir/whitelist"
  port=$(free_port)
  # It refuses to run as root: -d chroots into dir and drops to nobody; the
  # whitelist path is then relative to dir.
  start_bg "opentracker-$RUN" "${PIN_T[@]}" opentracker -i 127.0.0.1 -p "$port" -P "$port" -d "$dir" -w whitelist
  TPID=$LAST_PID XPID="" UDP_ADDR=127.0.0.1:$port HTTP_URL=http://127.0.0.1:$port HTTP_PATH=/announce PASSKEY="" API=""
  wait_tcp "$port" || { tail "$LOGS/opentracker-$RUN.log" >&2; die "opentracker did not start"; }
}

start_chihaya() {
  local port mport cfg=$WORK/chihaya-$RUN.yaml
  port=$(free_port); mport=$(free_port)
  cat >"$cfg" <<EOF
# Like chihaya's dist/example_config.yaml: memory storage, no hooks, HTTP and
# UDP on loopback. Keep-alive on (seedpay keeps connections too); the UDP
# clock skew is BEP 15's 2 minutes.
chihaya:
  announce_interval: 30m
  min_announce_interval: 15m
  metrics_addr: "127.0.0.1:$mport"
  http:
    addr: "127.0.0.1:$port"
    https_addr: ""
    read_timeout: 5s
    write_timeout: 5s
    enable_keepalive: true
    idle_timeout: 60s
    enable_request_timing: false
    announce_routes: ["/announce"]
    scrape_routes: ["/scrape"]
    allow_ip_spoofing: false
    real_ip_header: ""
    max_numwant: 100
    default_numwant: 50
    max_scrape_infohashes: 50
  udp:
    addr: "127.0.0.1:$port"
    max_clock_skew: 2m
    private_key: "$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
    enable_request_timing: false
    allow_ip_spoofing: false
    max_numwant: 100
    default_numwant: 50
    max_scrape_infohashes: 50
  storage:
    name: memory
    config:
      gc_interval: 3m
      peer_lifetime: 31m
      shard_count: 1024
      prometheus_reporting_interval: 1s
  prehooks: []
EOF
  start_bg "chihaya-$RUN" "${PIN_T[@]}" "$WORK/chihaya" --config "$cfg" --nocolors
  TPID=$LAST_PID XPID="" UDP_ADDR=127.0.0.1:$port HTTP_URL=http://127.0.0.1:$port HTTP_PATH=/announce PASSKEY="" API=""
  wait_tcp "$port" || { tail "$LOGS/chihaya-$RUN.log" >&2; die "chihaya did not start"; }
}

start_seedpay() { # on|off (rewards accounting) [name] [local|redis (sessions)]
  local acct=$1 acct_name=${2:-$1} sessions=${3:-local} port aport rport token cfg i reply
  cfg=$WORK/seedpay-$acct_name-$RUN.yaml
  port=$(free_port); aport=$(free_port); rport=$(free_port)
  token=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
  # A real redis-server as in production (no persistence here), pinned with
  # the tracker: its work is part of the tracker's cost.
  start_bg "redis-$acct_name-$RUN" "${PIN_T[@]}" redis-server --bind 127.0.0.1 --port "$rport" --save "" --appendonly no
  XPID=$LAST_PID
  wait_tcp "$rport" || die "redis-server did not start"
  seedpay_config "$cfg" "$rport" "$token" "$([ "$acct" = on ] && echo true || echo false)" "$sessions"
  local pprof=() pport
  PPROF=""
  if [ $PROFILE = 1 ]; then
    pport=$(free_port)
    pprof=(--pprof "127.0.0.1:$pport")
    PPROF=http://127.0.0.1:$pport
  fi
  start_bg "seedpay-$acct_name-$RUN" "${PIN_T[@]}" "$WORK/seedpay" serve --config "$cfg" \
    --http "127.0.0.1:$port" --udp "127.0.0.1:$port" --api "127.0.0.1:$aport" "${pprof[@]}"
  TPID=$LAST_PID UDP_ADDR=127.0.0.1:$port HTTP_URL=http://127.0.0.1:$port API=http://127.0.0.1:$aport
  for i in $(seq 150); do
    curl -sf "$API/healthz" >/dev/null 2>&1 && break
    kill -0 "$TPID" 2>/dev/null || break
    sleep 0.1
  done
  curl -sf "$API/healthz" >/dev/null || { tail "$LOGS/seedpay-$acct_name-$RUN.log" >&2; die "seedpay did not start"; }
  TOKEN=$token
  reply=$(curl -sf -X POST -H "Authorization: Bearer $token" -d '{"name":"bench"}' "$API/api/v1/users") \
    || die "creating the benchmark user failed"
  PASSKEY=$(printf '%s' "$reply" | sed -n 's/.*"passkey":"\([^"]*\)".*/\1/p')
  [ -n "$PASSKEY" ] || die "no passkey in $reply"
  HTTP_PATH=/announce/$PASSKEY
  # Register the benchmark's torrents: one curl process, one keep-alive
  # connection, $TORRENTS requests.
  awk -v api="$API" -v tok="$token" 'NR > 1 {print "next"}
    {printf "url = \"%s/api/v1/torrents\"\nheader = \"Authorization: Bearer %s\"\n", api, tok
     printf "header = \"Content-Type: application/json\"\n"
     printf "data = \"{\\\"info_hash\\\":\\\"%s\\\",\\\"size\\\":1073741824,\\\"name\\\":\\\"bench-%d\\\"}\"\n", $1, NR - 1
     printf "output = \"/dev/null\"\nwrite-out = \"%%{http_code}\\\\n\"\n"}' "$WORK/hashes.txt" >"$WORK/register.curl"
  local created
  created=$(curl -s -K "$WORK/register.curl" | grep -c '^201$' || true)
  [ "$created" = "$TORRENTS" ] || die "registered $created of $TORRENTS torrents"
}

start_tracker() { # name
  PPROF=""
  case $1 in
    opentracker) start_opentracker ;;
    chihaya) start_chihaya ;;
    seedpay-off) start_seedpay off ;;
    seedpay-on) start_seedpay on ;;
    seedpay-redis) start_seedpay on redis redis ;;
    seedpay-receipts) start_seedpay on receipts ;;
  esac
}

stop_tracker() {
  stop_pid "$TPID"
  [ -n "$XPID" ] && stop_pid "$XPID"
  return 0
}

# capture_start PCAP: with capture on, tcpdump pinned like the load writes a
# sample of the traffic to and from the tracker (udpload -capture-filter) to
# PCAP; capture_stop PCAP OUT ends it and writes what udpload -capture reads
# from it to OUT, with the packets the kernel dropped from the capture added
# to its RESULT line as capture_dropped (the pcap is kept with --keep).
CAP_PID=""
capture_start() {
  [ $CAPTURE = 1 ] || return 0
  local i filter
  filter=$("$WORK/udpload" -target "$UDP_ADDR" -capture-filter) || die "udpload -capture-filter failed"
  "${PIN_L[@]}" tcpdump -i lo -n -s 96 -B 65536 --time-stamp-precision=nano -w "$1" "$filter" 2>"$1.log" &
  CAP_PID=$!
  PIDS+=("$CAP_PID")
  for i in $(seq 50); do # it says so once its filter is set
    grep -q 'listening on' "$1.log" 2>/dev/null && return 0
    kill -0 "$CAP_PID" 2>/dev/null || break
    sleep 0.1
  done
  die "tcpdump did not start: $(cat "$1.log")"
}
capture_stop() {
  [ -n "$CAP_PID" ] || return 0
  local dropped
  sleep 0.5 # tcpdump still has the last replies in its ring; stopped now, it would lose them
  kill -TERM "$CAP_PID" 2>/dev/null || true
  wait "$CAP_PID" 2>/dev/null || true
  CAP_PID=""
  if "$WORK/udpload" -target "$UDP_ADDR" -capture "$1" >"$2" 2>&1; then
    dropped=$(sed -n 's/^\([0-9]*\) packets* dropped by kernel.*/\1/p' "$1.log")
    sed -i "/^RESULT /s/\$/ capture_dropped=${dropped:-unknown}/" "$2"
  else
    log "reading the capture failed: $(tail -1 "$2")"
  fi
  [ $KEEP = 1 ] || rm -f "$1"
}

# profile_start NAME DIR: with --profile and a seedpay running, a CPU profile
# of the next DURATION seconds into DIR/cpu-NAME.pprof (profile_wait ends it).
PROF_PID=""
profile_start() {
  [ -n "$PPROF" ] || return 0
  if [ "$1" = lat ]; then # the half-load latency step: an execution trace (scheduling, syscalls)
    curl -sf -o "$2/trace-$1.out" "$PPROF/debug/pprof/trace?seconds=$DURATION" &
  else
    curl -sf -o "$2/cpu-$1.pprof" "$PPROF/debug/pprof/profile?seconds=$DURATION" &
  fi
  PROF_PID=$!
  PIDS+=("$PROF_PID")
}
profile_wait() {
  [ -n "$PROF_PID" ] || return 0
  wait "$PROF_PID" || log "$RUN: the CPU profile failed"
  PROF_PID=""
}

udpload() { # OUTFILE ARGS...: the load generator, pinned like the load, bounded by timeout
  local out=$1; shift
  local pk=()
  [ -n "$PASSKEY" ] && pk=(-passkey "$PASSKEY")
  TIMEFORMAT='%U %S'
  { time timeout -k 5 $(( FILL_MAX + 60 )) "${PIN_L[@]}" "$WORK/udpload" -target "$UDP_ADDR" "${pk[@]}" "$@" \
      >"$out" 2>&1 || true; } 2>"$out.time"
}

wrk_run() { # OUTFILE [close]
  local out=$1 mode=${2:-keep}
  TIMEFORMAT='%U %S'
  { time timeout -k 5 $(( DURATION + 30 )) "${PIN_L[@]}" wrk -t$WRK_THREADS -c$WRK_CONNS -d${DURATION}s --timeout 2s \
      -s "$ROOT/bench/wrk/announce.lua" "$HTTP_URL" -- "$WORK/hashes.txt" "$HTTP_PATH" $PEERS $NUMWANT "$mode" \
      >"$out" 2>&1 || true; } 2>"$out.time"
}

# R[run/tracker/key] = value
declare -A R

# receipts_start DIR: bench/receiptload against the running seedpay, pinned
# like the load, for the rest of the measurement (stopped by receipts_stop);
# returns once its receipts are signed and its first ones were accepted.
RPID=""
receipts_start() {
  local d=$1 i window=$(( 3 * DURATION + 20 ))
  log "$RUN: receipts: setting up users, keys and announces, signing $(( RECEIPT_RATE * window )) receipts"
  "${PIN_L[@]}" timeout -k 5 $(( window + 120 )) "$WORK/receiptload" -target "$HTTP_URL" -api "$API" -token "$TOKEN" \
    -rate "$RECEIPT_RATE" -batch "$RECEIPT_BATCH" -receipts $(( RECEIPT_RATE * window )) -duration $(( window + 40 ))s \
    >"$d/receipts" 2>&1 &
  RPID=$!
  PIDS+=("$RPID")
  for i in $(seq 600); do
    grep -q '^READY ' "$d/receipts" && break
    kill -0 "$RPID" 2>/dev/null || break
    sleep 0.1
  done
  grep -q '^READY ' "$d/receipts" || { cat "$d/receipts" >&2; die "receiptload did not get ready"; }
  log "$RUN: receipts: flowing at $RECEIPT_RATE/s in batches of $RECEIPT_BATCH"
}

receipts_stop() { # DIR: stop receiptload, insist that its receipts were accepted
  local d=$1
  stop_pid "$RPID"
  RPID=""
  local acc
  acc=$(kv "$d/receipts" accepted)
  if [ -z "$acc" ] || [ "$acc" = 0 ]; then
    cat "$d/receipts" >&2
    die "no receipt was accepted: a failed measurement"
  fi
  log "$RUN: receipts: $(grep '^receipts:' "$d/receipts")"
}

measure() { # run tracker
  local run=$1 t=$2 d=$WORK/$1-$2 a b x y
  mkdir -p "$d"
  LOADS+=("$(cut -d' ' -f1 /proc/loadavg)")
  log "$run: $t: starting (load average ${LOADS[-1]})"
  start_tracker "$t"
  R[$run/$t/rss0]=$(rss_kb "$TPID")
  log "$run: $t: warming: every one of $TORRENTS x $PEERS peers announces once (numwant 0)"
  udpload "$d/warm" -fill -numwant 0 -torrents $TORRENTS -peers $PEERS -duration ${FILL_MAX}s -sockets $SOCKETS -window $WINDOW
  [ -n "$(kv "$d/warm" announces)" ] || { cat "$d/warm" >&2; die "$t: warm-up failed"; }
  [ "$t" = seedpay-receipts ] && receipts_start "$d"

  log "$run: $t: UDP ${DURATION}s"
  a=$(cpu_ticks "$TPID"); x=0; [ -n "$XPID" ] && x=$(cpu_ticks "$XPID")
  profile_start udp "$d"
  udpload "$d/udp" -duration ${DURATION}s -torrents $TORRENTS -peers $PEERS -numwant $NUMWANT -sockets $SOCKETS -window $WINDOW
  profile_wait
  b=$(cpu_ticks "$TPID"); y=0; [ -n "$XPID" ] && y=$(cpu_ticks "$XPID")
  R[$run/$t/udp_cpu]=$(awk -v t=$(( b - a + y - x )) -v hz="$TICKS" -v d="$(kv "$d/udp" elapsed_s)" 'BEGIN {if (d > 0) printf "%.2f", t / hz / d}')
  R[$run/$t/udp_gen_cpu]=$(awk -v d="$(kv "$d/udp" elapsed_s)" '{if (d > 0) printf "%.2f", ($1 + $2) / d}' "$d/udp.time")

  if [ $DO_LAT = 1 ]; then
    local peak half
    peak=$(kv "$d/udp" responses_per_s)
    half=$(( ${peak:-0} / 2 ))
    [ "$half" -ge 1 ] || die "$t: no closed-loop peak to halve"
    log "$run: $t: UDP open loop at $half/s (half of its closed-loop $peak/s) ${DURATION}s"
    profile_start lat "$d"
    capture_start "$d/lat.pcap"
    udpload "$d/lat" -rate "$half" -duration ${DURATION}s -torrents $TORRENTS -peers $PEERS -numwant $NUMWANT \
      -sockets $LAT_SOCKETS -window $LAT_WINDOW -pace-quantum $LAT_QUANTUM "${NICE_L[@]}"
    capture_stop "$d/lat.pcap" "$d/lat.cap"
    profile_wait
    [ -n "$(kv "$d/lat" rate)" ] || { cat "$d/lat" >&2; die "$t: open-loop run failed"; }
    for r in $LAT_RATES; do
      log "$run: $t: UDP open loop at $r/s (fixed) ${DURATION}s"
      udpload "$d/lat-$r" -rate "$r" -duration ${DURATION}s -torrents $TORRENTS -peers $PEERS -numwant $NUMWANT \
        -sockets $LAT_SOCKETS -window $LAT_WINDOW -pace-quantum $LAT_QUANTUM "${NICE_L[@]}"
      [ -n "$(kv "$d/lat-$r" rate)" ] || { cat "$d/lat-$r" >&2; die "$t: open-loop run at $r/s failed"; }
    done
  fi

  if [ $DO_HTTP = 1 ]; then
    log "$run: $t: HTTP ${DURATION}s (keep-alive)"
    a=$(cpu_ticks "$TPID"); x=0; [ -n "$XPID" ] && x=$(cpu_ticks "$XPID")
    profile_start http "$d"
    wrk_run "$d/http" keep
    profile_wait
    b=$(cpu_ticks "$TPID"); y=0; [ -n "$XPID" ] && y=$(cpu_ticks "$XPID")
    R[$run/$t/http_cpu]=$(awk -v t=$(( b - a + y - x )) -v hz="$TICKS" -v d="$DURATION" 'BEGIN {printf "%.2f", t / hz / d}')
    R[$run/$t/http_gen_cpu]=$(awk -v d="$DURATION" '{printf "%.2f", ($1 + $2) / d}' "$d/http.time")
    log "$run: $t: HTTP ${DURATION}s (Connection: close)"
    profile_start httpclose "$d"
    wrk_run "$d/httpclose" close
    profile_wait
  fi
  [ "$t" = seedpay-receipts ] && receipts_stop "$d"

  R[$run/$t/rss]=$(rss_kb "$TPID")
  [ -n "$XPID" ] && R[$run/$t/redis_rss]=$(rss_kb "$XPID")
  if [ -n "$API" ]; then
    curl -sf "$API/metrics" >"$d/metrics" || true
  fi
  kill -0 "$TPID" 2>/dev/null || { tail "$LOGS/$t-$RUN.log" "$LOGS"/*"$RUN".log 2>/dev/null | tail -20 >&2; die "$t died under load"; }
  stop_tracker
}

million() { # tracker: fresh process, fill FILL_PEERS per torrent, RSS per peer
  local t=$1 d=$WORK/1m-$1
  [ "$t" = seedpay-receipts ] && return 0 # the same process as seedpay-on until receipts flow
  mkdir -p "$d"
  log "1M: $t: starting"
  start_tracker "$t"
  sleep 1
  R[1m/$t/rss0]=$(rss_kb "$TPID")
  log "1M: $t: filling $TORRENTS x $FILL_PEERS peers over UDP, numwant 0 (at most ${FILL_MAX}s)"
  udpload "$d/fill" -fill -numwant 0 -torrents $TORRENTS -peers $FILL_PEERS -duration ${FILL_MAX}s -sockets $SOCKETS -window $WINDOW
  sleep 2
  R[1m/$t/rss1]=$(rss_kb "$TPID")
  udpload "$d/census" -census -torrents $TORRENTS
  R[1m/$t/peers]=$(kv "$d/census" swarm_peers)
  if [ -n "$API" ]; then curl -sf "$API/metrics" >"$d/metrics" || true; fi
  R[1m/$t/fill_rate]=$(kv "$d/fill" announces_per_s)
  R[1m/$t/fill_s]=$(kv "$d/fill" elapsed_s)
  stop_tracker
}

# ---------------------------------------------------------------- table
ratio() { # value base -> "1.23"
  awk -v v="$1" -v b="$2" 'BEGIN {if (v == "" || b == "" || b + 0 == 0 || v + 0 == 0) print "-"; else printf "%.2f", v / b}'
}
cell() { # value base fmt -> "12345 (1.00x)"
  local v=$1 b=$2 fmt=$3
  if [ -z "$v" ]; then printf -- '-'; return; fi
  # shellcheck disable=SC2059
  printf "$fmt (%sx)" "$v" "$(ratio "$v" "$b")"
}
ms() { awk -v u="$1" 'BEGIN {if (u == "") print ""; else printf "%.2f", u / 1000}'; }
ms3() { awk -v u="$1" 'BEGIN {if (u == "") print ""; else printf "%.3f", u / 1000}'; }

label() {
  case $1 in
    opentracker) echo "opentracker" ;;
    chihaya) echo "chihaya (upstream, no hooks)" ;;
    seedpay-off) echo "seedpay, accounting off" ;;
    seedpay-on) echo "seedpay, accounting on" ;;
    seedpay-redis) echo "seedpay, accounting on, sessions in Redis" ;;
    seedpay-receipts) echo "seedpay, accounting on, $RECEIPT_RATE receipts/s" ;;
  esac
}

value() { # run tracker key
  local run=$1 t=$2 d=$WORK/$1-$2
  case $3 in
    udp) kv "$d/udp" announces_per_s ;;
    udp50) ms "$(kv "$d/udp" p50_us)" ;;
    udp99) ms "$(kv "$d/udp" p99_us)" ;;
    udpeff) awk -v r="$(kv "$d/udp" announces_per_s)" -v c="${R[$run/$t/udp_cpu]:-}" 'BEGIN {if (c > 0) printf "%.0f", r / c}' ;;
    http) kv "$d/http" ok_per_s ;;
    http50) ms "$(kv "$d/http" p50_us)" ;;
    http99) ms "$(kv "$d/http" p99_us)" ;;
    httpclose) kv "$d/httpclose" ok_per_s ;;
    rss) awk -v k="${R[$run/$t/rss]:-}" 'BEGIN {if (k != "") printf "%.0f", k / 1024}' ;;
    perpeer)
      [ "$run" = "${RUNS%% *}" ] || return 0 # the 1M step follows the first run
      awk -v a="${R[1m/$t/rss0]:-}" -v b="${R[1m/$t/rss1]:-}" -v n="${R[1m/$t/peers]:-}" \
        'BEGIN {if (n > 0 && b != "") printf "%.0f", (b - a) * 1024 / n}' ;;
  esac
}

print_table() {
  local run t k base v line
  local keys=(udp udp50 udp99 udpeff http http50 http99 httpclose rss perpeer)
  local fmts=("%.0f" "%.2f" "%.2f" "%.0f" "%.0f" "%.2f" "%.2f" "%.0f" "%.0f" "%.0f")
  local fill_label
  fill_label=$(awk -v n=$(( TORRENTS * FILL_PEERS )) 'BEGIN {if (n >= 1e6) printf "%gM", n / 1e6; else printf "%gk", n / 1e3}')
  echo "| run | tracker | UDP announces/s | UDP p50 ms | UDP p99 ms | UDP announces per tracker CPU-s | HTTP announces/s | HTTP p50 ms | HTTP p99 ms | HTTP announces/s, 1 conn each | RSS MiB after load | RSS bytes/peer, $fill_label peers |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  for run in $RUNS; do
    for t in $TRACKERS; do
      line="| $run | $(label "$t") |"
      for i in "${!keys[@]}"; do
        k=${keys[$i]}
        v=$(value "$run" "$t" "$k")
        base=""
        has opentracker && base=$(value "$run" opentracker "$k")
        line+=" $(cell "$v" "$base" "${fmts[$i]}") |"
      done
      echo "$line"
    done
  done
}

print_details() {
  local run t d m
  echo
  echo "Details (cpu = cores busy during the UDP run: tracker plus its Redis; gen = the load generator):"
  for run in $RUNS; do
    for t in $TRACKERS; do
      d=$WORK/$run-$t
      printf -- '- %s, %s: UDP errors %s, timeouts %s, peers/reply %s, scrapes %s, cpu %s, gen %s; HTTP keep-alive: wrk read errors %s, timeouts %s, non-200 %s (wrk status errors %s), failure replies %s, max %s ms, cpu %s, gen %s; HTTP close: read errors %s, timeouts %s, non-200 %s, failures %s' \
        "$run" "$t" "$(kv "$d/udp" errors)" "$(kv "$d/udp" timeouts)" "$(kv "$d/udp" avg_peers)" "$(kv "$d/udp" scrapes)" \
        "${R[$run/$t/udp_cpu]:-}" "${R[$run/$t/udp_gen_cpu]:-}" \
        "$(kv "$d/http" err_read)" "$(kv "$d/http" err_timeout)" "$(kv "$d/http" non200)" "$(kv "$d/http" err_status)" "$(kv "$d/http" failures)" \
        "$(ms "$(kv "$d/http" max_us)")" "${R[$run/$t/http_cpu]:-}" "${R[$run/$t/http_gen_cpu]:-}" \
        "$(kv "$d/httpclose" err_read)" "$(kv "$d/httpclose" err_timeout)" "$(kv "$d/httpclose" non200)" "$(kv "$d/httpclose" failures)"
      if [ -f "$d/metrics" ]; then
        m=$(awk '/^seedpay_accounting_events_(buffered|dropped|flushed)_total/ {sub(/seedpay_accounting_events_/, ""); sub(/_total/, ""); printf "%s%s %d", s, $1, $2; s = ", "}
          /^seedpay_accounting_events_total\{/ {o = $1; sub(/.*outcome="/, "", o); sub(/".*/, "", o); if ($2 > 0) {printf "%s%s %d", s, o, $2; s = ", "}}
          /^seedpay_accounting_local_(flushes|flush_failures|user_writes)_total/ {n = $1; sub(/seedpay_accounting_local_/, "", n); sub(/_total/, "", n); printf "%s%s %d", s, n, $2; s = ", "}' "$d/metrics")
        [ -n "$m" ] && printf '; accounting events: %s' "$m"
        printf '; Redis RSS %s MiB' "$(awk -v k="${R[$run/$t/redis_rss]:-0}" 'BEGIN {printf "%.0f", k / 1024}')"
      fi
      if [ -f "$d/receipts" ]; then
        m=$(awk '/^seedpay_receipts_total/ {printf "%s%s %d", s, $1, $2; s = ", "}' "$d/metrics" 2>/dev/null | sed 's/seedpay_receipts_total//g')
        printf '; receiptload %s; tracker receipt counters (with the probes): %s' "$(sed -n 's/^receipts: //p' "$d/receipts")" "${m:-?}"
      fi
      echo
    done
  done
  if [ $DO_1M = 1 ]; then
    for t in $TRACKERS; do
      [ "$t" = seedpay-receipts ] && continue
      printf -- '- peers step, %s: %s peers held (census by scrape), RSS %s -> %s MiB, filled at %s announces/s in %s s\n' \
        "$t" "${R[1m/$t/peers]:-?}" \
        "$(awk -v k="${R[1m/$t/rss0]:-0}" 'BEGIN {printf "%.0f", k / 1024}')" \
        "$(awk -v k="${R[1m/$t/rss1]:-0}" 'BEGIN {printf "%.0f", k / 1024}')" \
        "${R[1m/$t/fill_rate]:-?}" "${R[1m/$t/fill_s]:-?}"
    done
  fi
}

lat_cell() { # FILE KEY BASE: "p99 ms (ratio to BASE x)", "-" without the key
  local v
  v=$(ms3 "$(kv "$1" "$2")")
  if [ -z "$v" ]; then printf -- '-'; return; fi
  printf '%s (%sx)' "$v" "$(ratio "$(ms "$(kv "$1" "$2")")" "$3")"
}

print_latency() { # the open-loop step: p99 at half of each tracker's closed-loop peak (and --lat-rates)
  [ $DO_LAT = 1 ] || return 0
  local run t d base kbase cbase cap un dr f r what
  echo
  echo "Latency at half load: udpload open loop (-rate) at half of the tracker's closed-loop responses/s${LAT_RATES:+ (and at the fixed rates $LAT_RATES)}, $LAT_SOCKETS sockets, pacer quantum $LAT_QUANTUM (pinned: at nice -20 where permitted, udpload -pacer-nice), ${DURATION}s, latency from the scheduled send time (no coordinated omission) to the reader's clock, and to the kernel's receive stamp (SO_TIMESTAMPNS: stamped inside the tracker's send on loopback, so the generator's wake-up of its reader is left out; the pacer's lag is not); service = from the actual send; lag = pacer's send - schedule:"
  echo
  if [ $CAPTURE = 1 ]; then echo "In the tracker (capture) = from the request's capture stamp to its reply's, a sample of the requests (udpload -capture-filter), half-load step only: the generator's lag and wake-ups left out; \"unanswered\" = sampled requests with no captured reply, \"capture dropped\" = packets the kernel dropped before tcpdump read them."; fi
  echo
  echo "| run | tracker | closed-loop peak/s | open-loop rate/s | achieved/s | p50 ms | p90 ms | p99 ms | p99 ms, kernel stamp | p99 ms in the tracker (capture) | p99.9 ms | max ms | service p99 ms | pacer lag p99 ms | timeouts | unsent | generator on time |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  for run in $RUNS; do
    for r in half $LAT_RATES; do
      f=lat what="(half)"
      [ "$r" = half ] || { f=lat-$r; what="(fixed)"; }
      base="" kbase="" cbase=""
      has opentracker && base=$(ms "$(kv "$WORK/$run-opentracker/$f" p99_us)") \
        kbase=$(ms "$(kv "$WORK/$run-opentracker/$f" kern_p99_us)") \
        cbase=$(ms "$(kv "$WORK/$run-opentracker/$f.cap" net_p99_us)")
      for t in $TRACKERS; do
        d=$WORK/$run-$t
        [ -f "$d/$f" ] || continue
        # The p99 says something about the tracker only if the pacer itself was
        # on time: its lag p99 below 1 ms (the target) and no request unsent.
        cap=$(lat_cell "$d/$f.cap" net_p99_us "$cbase")
        if [ "$cap" != - ]; then
          # What the sample misses: requests with no captured reply (the
          # tracker's drops, or a reply tcpdump lost), and packets the kernel
          # dropped before tcpdump read them.
          un=$(kv "$d/$f.cap" capture_unanswered) dr=$(kv "$d/$f.cap" capture_dropped)
          [ "${un:-0}" = 0 ] || cap+=", $un of $(kv "$d/$f.cap" capture_requests) unanswered"
          [ "${dr:-0}" = 0 ] || cap+=", capture dropped $dr"
        fi
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$run" "$(label "$t")" \
          "$(kv "$d/udp" responses_per_s)" "$(kv "$d/$f" rate) $what" "$(kv "$d/$f" responses_per_s)" \
          "$(ms3 "$(kv "$d/$f" p50_us)")" "$(ms3 "$(kv "$d/$f" p90_us)")" \
          "$(lat_cell "$d/$f" p99_us "$base")" "$(lat_cell "$d/$f" kern_p99_us "$kbase")" "$cap" \
          "$(ms3 "$(kv "$d/$f" p999_us)")" "$(ms3 "$(kv "$d/$f" max_us)")" \
          "$(ms3 "$(kv "$d/$f" svc_p99_us)")" "$(ms3 "$(kv "$d/$f" lag_p99_us)")" \
          "$(kv "$d/$f" timeouts)" "$(kv "$d/$f" unsent)" \
          "$(awk -v l="$(kv "$d/$f" lag_p99_us)" -v u="$(kv "$d/$f" unsent)" 'BEGIN {print (l != "" && l < 1000 && u == 0 ? "yes" : "no: generator-limited")}')"
      done
    done
  done
}

print_accounting() { # the cost of accounting: on / off, for each session mode
  has seedpay-off || return 0
  local run t
  echo
  echo "Accounting on vs off, same run (ratio = on / off; target >= 0.85):"
  for run in $RUNS; do
    for t in seedpay-on seedpay-redis; do
      has "$t" || continue
      printf -- '- %s, %s: UDP announces/s %s, UDP announces per tracker CPU-s %s, HTTP announces/s %s, HTTP 1 conn each %s\n' "$run" "$(label "$t")" \
        "$(ratio "$(value "$run" "$t" udp)" "$(value "$run" seedpay-off udp)")" \
        "$(ratio "$(value "$run" "$t" udpeff)" "$(value "$run" seedpay-off udpeff)")" \
        "$(ratio "$(value "$run" "$t" http)" "$(value "$run" seedpay-off http)")" \
        "$(ratio "$(value "$run" "$t" httpclose)" "$(value "$run" seedpay-off httpclose)")"
    done
  done
}

print_receipts() { # the ratio of announce throughput with receipts flowing to without
  has seedpay-on && has seedpay-receipts || return 0
  local run d
  echo
  echo "Receipts flowing ($RECEIPT_RATE receipts/s, batches of $RECEIPT_BATCH) vs not, seedpay with accounting on, same run (ratio = with / without):"
  for run in $RUNS; do
    d=$WORK/$run-seedpay-receipts
    printf -- '- %s: UDP announces/s %s, UDP announces per tracker CPU-s %s, HTTP announces/s %s, HTTP 1 conn each %s; receipts accepted %s of %s posted (%s/s accepted), rejected %s (%s)\n' "$run" \
      "$(ratio "$(value "$run" seedpay-receipts udp)" "$(value "$run" seedpay-on udp)")" \
      "$(ratio "$(value "$run" seedpay-receipts udpeff)" "$(value "$run" seedpay-on udpeff)")" \
      "$(ratio "$(value "$run" seedpay-receipts http)" "$(value "$run" seedpay-on http)")" \
      "$(ratio "$(value "$run" seedpay-receipts httpclose)" "$(value "$run" seedpay-on httpclose)")" \
      "$(kv "$d/receipts" accepted)" "$(kv "$d/receipts" sent)" "$(kv "$d/receipts" accepted_per_s)" \
      "$(kv "$d/receipts" rejected)" "$(kv "$d/receipts" reasons)"
  done
}

# print_rounds: with --rounds, each target's same-round figure as the median
# and range over the rounds, per mode.
print_rounds() {
  [ "$ROUNDS" -gt 1 ] || return 0
  local m t
  echo
  echo "Medians over $ROUNDS rounds (range in brackets) of the same-round figures; the trackers' order rotated each round:"
  echo
  echo "| measure | $(echo $MODES | sed 's/ / | /g') |"
  echo "| --- |$(for m in $MODES; do printf ' --- |'; done)"
  if has seedpay-on && has opentracker; then
    round_row "UDP announces/s, accounting on / opentracker" pair_ratio seedpay-on opentracker udp
    round_row "HTTP announces/s, accounting on / opentracker" pair_ratio seedpay-on opentracker http
    round_row "HTTP announces/s, 1 conn each, accounting on / opentracker" pair_ratio seedpay-on opentracker httpclose
  fi
  if has seedpay-off && has opentracker; then round_row "UDP announces/s, accounting off / opentracker" pair_ratio seedpay-off opentracker udp; fi
  if has seedpay-on && has chihaya; then round_row "HTTP announces/s, accounting on / upstream chihaya" pair_ratio seedpay-on chihaya http; fi
  if has seedpay-on && has seedpay-off; then
    round_row "accounting on / off, UDP announces/s" pair_ratio seedpay-on seedpay-off udp
    round_row "accounting on / off, UDP announces per tracker CPU-s" pair_ratio seedpay-on seedpay-off udpeff
    round_row "accounting on / off, HTTP announces/s" pair_ratio seedpay-on seedpay-off http
  fi
  if [ $DO_LAT = 1 ]; then
    for t in seedpay-on seedpay-off opentracker; do
      has $t || continue
      round_row "p99 ms at half of peak, $(label $t)" lat_ms $t p99_us
      round_row "p99 ms at half of peak to the kernel stamp, $(label $t)" lat_ms $t kern_p99_us
      if [ $CAPTURE = 1 ]; then round_row "p99 ms at half of peak in the tracker (capture), $(label $t)" lat_ms $t net_p99_us .cap; fi
    done
  fi
}
has() { [[ " $TRACKERS " == *" $1 "* ]]; }
round_row() { # LABEL FUNC ARGS...: one row; FUNC RUN ARGS... prints one round's figure
  local label=$1 f=$2 cells="" m k vals
  shift 2
  for m in $MODES; do
    vals=""
    for k in $(seq "$ROUNDS"); do vals+="$("$f" "$m-$k" "$@") "; done
    # shellcheck disable=SC2086 # one word per round
    cells+=" $(median_range $vals) |"
  done
  echo "| $label |$cells"
}
pair_ratio() { ratio "$(value "$1" "$2" "$4")" "$(value "$1" "$3" "$4")"; } # RUN A B KEY: A's KEY / B's
lat_ms() { ms "$(kv "$WORK/$1-$2/lat${4:-}" "$3")"; } # RUN TRACKER KEY [.cap]: the half-load step's KEY in ms (.cap: from its capture)

median_range() { # VALUES...: "median (min-max)" of the numeric ones, "-" if none
  printf '%s\n' "$@" | awk '$1 ~ /^[0-9.]+$/ {v[n++] = $1 + 0}
    END {
      if (n == 0) { print "-"; exit }
      for (i = 1; i < n; i++) { x = v[i]; for (j = i - 1; j >= 0 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
      m = n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
      printf "%.2f (%.2f-%.2f)", m, v[0], v[n - 1]
    }'
}

# ---------------------------------------------------------------- main
install_missing
build

MODES="pinned unpinned"
if [ "$(nproc)" -lt 2 ]; then
  log "fewer than 2 CPUs: no pinned run"
  MODES=unpinned
fi
# A run is a mode, and with --rounds the round after a dash: pinned-2.
RUNS=""
for k in $(seq "$ROUNDS"); do
  for m in $MODES; do
    if [ "$ROUNDS" = 1 ]; then RUNS+="$m "; else RUNS+="$m-$k "; fi
  done
done
RUNS=${RUNS% }
mode() { echo "${1%-*}"; }
rotated() { # K: the trackers, starting at the (K-1)th (mod their count)
  local -a ts=($TRACKERS)
  local i n=${#ts[@]}
  for i in $(seq 0 $(( n - 1 ))); do printf '%s ' "${ts[$(( (i + $1 - 1) % n ))]}"; done
}
for RUN in $RUNS; do
  # The pacer at nice -20 only with the load on its own core: sharing the
  # cores, it starved the tracker (bench/udpload/pace.go).
  if [ "$(mode "$RUN")" = pinned ]; then PIN_T=(taskset -c 0); PIN_L=(taskset -c 1); NICE_L=(-pacer-nice); else PIN_T=(); PIN_L=(); NICE_L=(); fi
  round=1
  [ "$ROUNDS" = 1 ] || round=${RUN##*-}
  for t in $(rotated "$round"); do measure "$RUN" "$t"; done
  if [ "$RUN" = "${RUNS%% *}" ] && [ $DO_1M = 1 ]; then
    RUN=1m # log names; the pinning stays that of the first run
    for t in $TRACKERS; do million "$t"; done
  fi
done

ELAPSED=$(( $(date +%s) - START_TIME ))
{
  echo
  if [ -n "$REV" ]; then
    built="commit ${REV:0:7} (built from git archive)"
  else
    built="commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')"
  fi
  echo "seedpay bench/compare.sh: $(date -u +%Y-%m-%dT%H:%M:%SZ), $built, $(nproc) CPUs, load average before: $LOADAVG"
  echo "load: $TORRENTS torrents x $PEERS peers (filled first, numwant 0), exponential head, 75% seeders, numwant $NUMWANT; UDP: udpload $SOCKETS sockets x $WINDOW in flight, announce:scrape 100:1; HTTP: wrk -t$WRK_THREADS -c$WRK_CONNS; ${DURATION}s per measurement; pinned = tracker (+ Redis) on CPU 0, load on CPU 1; ratios are to opentracker in the same run; tracker CPU-s includes seedpay's Redis; HTTP latency is from the keep-alive run"
  if [ $PROFILE = 1 ]; then
    echo "PROFILED RUN (--profile): seedpay served while being CPU-profiled (100 Hz), the other trackers not; its ratios are biased against it. Profiles in $WORK/<run>-seedpay-*/cpu-*.pprof"
  fi
  echo
  print_table
  print_latency
  print_accounting
  print_receipts
  print_rounds
  print_details
  echo
  echo "total time ${ELAPSED}s, load average after: $(cut -d' ' -f1-3 /proc/loadavg); 1-minute load average at the start of each throughput measurement: ${LOADS[*]}"
}
