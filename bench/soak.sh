#!/usr/bin/env bash
# Soak: does seedpay's memory stay flat under a steady churning load?
# seedpay (rewards accounting on, its own redis-server on a free loopback port,
# no persistence; not the embedded dev store) is filled with 1000 torrents x
# 1000 peers = 1M peers (udpload -fill), then loaded open loop at --rate
# requests/s with churn (udpload -churn 4: every 4 requests one new peer joins,
# event started, and the oldest leaves, event stopped; the other two announce
# live peers), so the peer count stays at 1M while the peers are replaced.
# Every 10 s it samples seedpay's VmRSS, Go heap in use, seedpay_peers gauge and
# Redis's RSS; at the end it prints the RSS growth from the first sample at or
# after the warm-up (minute 2; a third of the run when --minutes < 3) to the
# last one, and exits 1 if it exceeds --max-growth % or the peer count moved
# by more than 5 %.
#
#   bench/soak.sh --rev HEAD               # 10 minutes of load, about 11-12 minutes in all
#   bench/soak.sh --rev HEAD --minutes 3   # shorter
#
# Options:
#   --rev REV          build seedpay and udpload from commit REV (git archive) instead of the work tree
#   --minutes N        minutes of churning load, 1..10 (default 10)
#   --rate N           requests/s of the churning load, 100..200000 (default 5000)
#   --peers N          peers per torrent, 2..1000 (default 1000: 1M peers)
#   --max-growth PCT   RSS growth after the warm-up that fails the run (default 10)
#   --unpinned         do not pin (default: seedpay and Redis on CPU 0, load on CPU 1)
#   --keep             keep the work dir (logs, samples)
# Everything runs on loopback; every process started here is killed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REV=""
MINUTES=10
RATE=5000
PEERS=1000
MAX_GROWTH=10
PIN=1
KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --rev) REV=${2:?}; shift ;;
    --rev=*) REV=${1#*=} ;;
    --minutes) MINUTES=${2:?}; shift ;;
    --minutes=*) MINUTES=${1#*=} ;;
    --rate) RATE=${2:?}; shift ;;
    --rate=*) RATE=${1#*=} ;;
    --peers) PEERS=${2:?}; shift ;;
    --peers=*) PEERS=${1#*=} ;;
    --max-growth) MAX_GROWTH=${2:?}; shift ;;
    --max-growth=*) MAX_GROWTH=${1#*=} ;;
    --unpinned) PIN=0 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case $MINUTES$RATE$PEERS$MAX_GROWTH in *[!0-9]*) echo "soak.sh: --minutes, --rate, --peers, --max-growth take whole numbers" >&2; exit 2 ;; esac
[ "$MINUTES" -ge 1 ] && [ "$MINUTES" -le 10 ] || { echo "soak.sh: --minutes must be 1..10" >&2; exit 2; }
[ "$RATE" -ge 100 ] && [ "$RATE" -le 200000 ] || { echo "soak.sh: --rate must be 100..200000" >&2; exit 2; }
[ "$PEERS" -ge 2 ] && [ "$PEERS" -le 1000 ] || { echo "soak.sh: --peers must be 2..1000" >&2; exit 2; }
if [ -n "$REV" ]; then
  REV=$(git -C "$ROOT" rev-parse --verify --quiet "$REV^{commit}") || { echo "soak.sh: --rev: no such commit" >&2; exit 2; }
fi

TORRENTS=1000
SOCKETS=16
WINDOW=64
FILL_MAX=180
SAMPLE=10 # seconds between samples
LOAD_S=$(( MINUTES * 60 ))
WARM_S=120
[ "$MINUTES" -lt 3 ] && WARM_S=$(( LOAD_S / 3 ))

START_TIME=$(date +%s)
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
WORK=$(mktemp -d /tmp/seedpay-soak.XXXXXX)
LOGS=$WORK/logs
mkdir -p "$LOGS"
PIDS=()

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
metric() { # FILE NAME: a metric's value, summed over its labels (seedpay_peers{kind=...})
  awk -v n="$2" '{k = $1; sub(/\{.*/, "", k)} k == n {v += $2; f = 1} END {if (f) printf "%.0f", v}' "$1" 2>/dev/null || true
}

for c in redis-server curl ss go; do command -v "$c" >/dev/null || die "$c is missing (bench/compare.sh installs it)"; done
if [ $PIN = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  PIN_T=(taskset -c 0); PIN_L=(taskset -c 1); PINNING="seedpay and Redis on CPU 0, load on CPU 1"
else
  PIN_T=(); PIN_L=(); PINNING="unpinned"
fi

# ---------------------------------------------------------------- build
SRC=$ROOT
if [ -n "$REV" ]; then
  SRC=$WORK/src
  mkdir -p "$SRC"
  git -C "$ROOT" archive "$REV" | tar -x -C "$SRC" || die "git archive $REV failed"
  BUILT="commit ${REV:0:7} (built from git archive)"
else
  BUILT="commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')"
fi
log "building seedpay and udpload from $BUILT"
(cd "$SRC" && go build -o "$WORK/seedpay" ./cmd/seedpay && go build -o "$WORK/udpload" ./bench/udpload) || die "build failed"
"$WORK/udpload" -print-hashes -torrents $TORRENTS >"$WORK/hashes.txt"

# ---------------------------------------------------------------- seedpay + redis
PORT=$(free_port); APORT=$(free_port); RPORT=$(free_port)
TOKEN=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
start_bg redis "${PIN_T[@]}" redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no
XPID=$LAST_PID
wait_tcp "$RPORT" || die "redis-server did not start"
seedpay_config "$WORK/seedpay.yaml" "$RPORT" "$TOKEN" true local
start_bg seedpay "${PIN_T[@]}" "$WORK/seedpay" serve --config "$WORK/seedpay.yaml" \
  --http "127.0.0.1:$PORT" --udp "127.0.0.1:$PORT" --api "127.0.0.1:$APORT"
TPID=$LAST_PID
API=http://127.0.0.1:$APORT
for i in $(seq 150); do
  curl -sf "$API/healthz" >/dev/null 2>&1 && break
  kill -0 "$TPID" 2>/dev/null || break
  sleep 0.1
done
curl -sf "$API/healthz" >/dev/null || { tail "$LOGS/seedpay.log" >&2; die "seedpay did not start"; }
reply=$(curl -sf -X POST -H "Authorization: Bearer $TOKEN" -d '{"name":"soak"}' "$API/api/v1/users") || die "creating the user failed"
PASSKEY=$(printf '%s' "$reply" | sed -n 's/.*"passkey":"\([^"]*\)".*/\1/p')
[ -n "$PASSKEY" ] || die "no passkey in $reply"
awk -v api="$API" -v tok="$TOKEN" 'NR > 1 {print "next"}
  {printf "url = \"%s/api/v1/torrents\"\nheader = \"Authorization: Bearer %s\"\n", api, tok
   printf "header = \"Content-Type: application/json\"\n"
   printf "data = \"{\\\"info_hash\\\":\\\"%s\\\",\\\"size\\\":1073741824,\\\"name\\\":\\\"soak-%d\\\"}\"\n", $1, NR - 1
   printf "output = \"/dev/null\"\nwrite-out = \"%%{http_code}\\\\n\"\n"}' "$WORK/hashes.txt" >"$WORK/register.curl"
created=$(curl -s -K "$WORK/register.curl" | grep -c '^201$' || true)
[ "$created" = "$TORRENTS" ] || die "registered $created of $TORRENTS torrents"

UDP=(-target "127.0.0.1:$PORT" -passkey "$PASSKEY" -torrents $TORRENTS -peers "$PEERS")
sleep 1
RSS_EMPTY=$(rss_kb "$TPID")
log "filling $TORRENTS x $PEERS peers (at most ${FILL_MAX}s)"
timeout -k 5 $(( FILL_MAX + 30 )) "${PIN_L[@]}" "$WORK/udpload" "${UDP[@]}" -fill -numwant 0 -sockets 64 -window 2 \
  -duration ${FILL_MAX}s >"$WORK/fill" 2>&1 || { cat "$WORK/fill" >&2; die "fill failed"; }
sleep 2
RSS_FULL=$(rss_kb "$TPID")
curl -sf "$API/metrics" >"$WORK/metrics.fill" || true
PEERS_FULL=$(metric "$WORK/metrics.fill" seedpay_peers)
log "filled: $(kv "$WORK/fill" announces) announces at $(kv "$WORK/fill" announces_per_s)/s, seedpay_peers $PEERS_FULL, RSS $(( RSS_EMPTY / 1024 )) -> $(( RSS_FULL / 1024 )) MiB"

# ---------------------------------------------------------------- soak
log "churning load: $RATE requests/s for ${LOAD_S}s (udpload -rate $RATE -churn 4), sampling every ${SAMPLE}s"
"${PIN_L[@]}" timeout -k 5 $(( LOAD_S + 60 )) "$WORK/udpload" "${UDP[@]}" -rate "$RATE" -churn 4 -numwant 30 \
  -sockets $SOCKETS -window $WINDOW -duration ${LOAD_S}s -requests $(( RATE * LOAD_S + 1 )) >"$WORK/load" 2>&1 &
LPID=$!
PIDS+=("$LPID")
T0=$(date +%s.%N)
printf 't_s rss_kb heap_inuse_bytes peers redis_rss_kb load1\n' >"$WORK/samples"
sample() { # t
  local m=$WORK/metrics.now
  curl -sf -m 5 "$API/metrics" >"$m" 2>/dev/null || : >"$m"
  printf '%s %s %s %s %s %s\n' "$1" "$(rss_kb "$TPID")" "$(metric "$m" go_memstats_heap_inuse_bytes)" \
    "$(metric "$m" seedpay_peers)" "$(rss_kb "$XPID")" "$(cut -d' ' -f1 /proc/loadavg)" >>"$WORK/samples"
}
N_SAMPLES=$(( LOAD_S / SAMPLE ))
for k in $(seq 0 "$N_SAMPLES"); do
  # sleep until T0 + k * SAMPLE
  wait_s=$(awk -v t0="$T0" -v k="$k" -v s="$SAMPLE" -v now="$(date +%s.%N)" 'BEGIN {w = t0 + k * s - now; printf "%.3f", (w > 0 ? w : 0)}')
  sleep "$wait_s"
  kill -0 "$TPID" 2>/dev/null || die "seedpay died during the soak (see $LOGS/seedpay.log)"
  sample $(( k * SAMPLE ))
  if [ $(( k % 6 )) = 0 ]; then
    log "t=$(( k * SAMPLE ))s: $(tail -1 "$WORK/samples" | awk '{printf "RSS %.1f MiB, heap in use %.1f MiB, peers %s, Redis RSS %.1f MiB", $2 / 1024, $3 / 1048576, $4, $5 / 1024}')"
  fi
done
wait "$LPID" || true
sleep 1
sample "$(awk -v t0="$T0" -v now="$(date +%s.%N)" 'BEGIN {printf "%.0f", now - t0}')"

# ---------------------------------------------------------------- report
ELAPSED=$(( $(date +%s) - START_TIME ))
{
  echo
  echo "seedpay bench/soak.sh: $(date -u +%Y-%m-%dT%H:%M:%SZ), $BUILT, $(nproc) CPUs ($PINNING), load average before: $LOADAVG"
  echo "accounting on, redis-server on 127.0.0.1:$RPORT (no persistence); $TORRENTS torrents x $PEERS peers filled, then udpload -rate $RATE -churn 4 for ${LOAD_S}s ($SOCKETS sockets); samples every ${SAMPLE}s; growth measured from t >= ${WARM_S}s"
  echo "fill: $(kv "$WORK/fill" announces) announces, RSS $RSS_EMPTY -> $RSS_FULL KiB, seedpay_peers $PEERS_FULL: $(awk -v a="$RSS_EMPTY" -v b="$RSS_FULL" -v n="$PEERS_FULL" 'BEGIN {if (n > 0) printf "%.0f", (b - a) * 1024 / n; else print "?"}') bytes of RSS per peer"
  echo "load: $(grep -E '^  (announces|latency|open loop|errors)' "$WORK/load" | sed 's/^ *//' | tr '\n' ';')"
  curl -sf -m 5 "$API/metrics" >"$WORK/metrics.end" 2>/dev/null || : >"$WORK/metrics.end"
  # Local sessions (the default): announces accounted in memory and the
  # flushes; Redis sessions: events buffered, dropped and flushed.
  for k in events local_flushes local_flush_failures events_buffered events_dropped events_flushed; do
    a=$(metric "$WORK/metrics.fill" "seedpay_accounting_${k}_total"); b=$(metric "$WORK/metrics.end" "seedpay_accounting_${k}_total")
    if [ -n "$b" ]; then printf '%s %s\n' "$([ "$k" = events ] && echo accounted || echo "$k")" $(( ${b:-0} - ${a:-0} )); fi
  done | awk '{printf "%s%s %s", (NR > 1 ? ", " : "accounting events during the soak: "), $1, $2} END {print ""}'
  echo
  echo "| t s | RSS MiB | Go heap in use MiB | seedpay_peers | Redis RSS MiB | load average (1 min) |"
  echo "| --- | --- | --- | --- | --- | --- |"
  awk 'NR > 1 {printf "| %s | %.1f | %.1f | %s | %.1f | %s |\n", $1, $2 / 1024, $3 / 1048576, $4, $5 / 1024, $6}' "$WORK/samples"
  echo
} | tee "$WORK/report"
awk -v warm="$WARM_S" -v maxg="$MAX_GROWTH" '
  NR == 1 {next}
  base == "" && $1 >= warm {base = $2; bt = $1; bh = $3; bp = $4; br = $5}
  {last = $2; lt = $1; lh = $3; lp = $4; lr = $5
   if ($4 != "") {if (pmin == "" || $4 < pmin) pmin = $4; if (pmax == "" || $4 > pmax) pmax = $4}}
  END {
    if (base == "") {print "no sample after the warm-up"; exit 1}
    g = (last - base) * 1024; pct = 100 * (last - base) / base
    printf "RSS growth t=%ss -> t=%ss: %+d bytes (%+.2f %%), %.1f -> %.1f MiB; Go heap in use %+.1f MiB; Redis RSS %+.1f MiB; seedpay_peers %s..%s (at t=%ss %s, at the end %s)\n", \
      bt, lt, g, pct, base / 1024, last / 1024, (lh - bh) / 1048576, (lr - br) / 1024, pmin, pmax, bt, bp, lp
    bad = 0
    if (pct > maxg) {printf "FAIL: RSS grew %.2f %% > %s %% after the warm-up\n", pct, maxg; bad = 1}
    if (bp > 0 && (pmin < 0.95 * bp || pmax > 1.05 * bp)) {printf "FAIL: the peer count moved by more than 5 %%\n"; bad = 1}
    if (!bad) printf "PASS: RSS growth within %s %%, peer count within 5 %%\n", maxg
    exit bad
  }' "$WORK/samples" | tee -a "$WORK/report"
STATUS=${PIPESTATUS[0]}
echo "total time ${ELAPSED}s, load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$STATUS"
