# Shared by compare.sh and soak.sh (sourced after START_TIME, WORK, LOGS,
# PIDS and KEEP are set): logging, background processes and their cleanup,
# ports, and reading /proc and the load generator's RESULT lines.
# shellcheck shell=bash

log() { printf '%s [%3ds] %s\n' "$(date +%H:%M:%S)" $(( $(date +%s) - START_TIME )) "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

stop_pid() { # pid: TERM, up to 10 s, then KILL
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local pid
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if [ $KEEP = 1 ]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# start_bg LOGNAME CMD...: run in the background, remember the pid in LAST_PID.
start_bg() {
  local name=$1; shift
  "$@" >"$LOGS/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

free_port() { # a port free for both TCP and UDP on loopback, below the ephemeral range
  local p i lo
  lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  for i in $(seq 200); do
    p=$(( 10000 + RANDOM % (lo - 10000) ))
    if ! ss -Htuan 2>/dev/null | awk '{print $5}' | grep -q ":$p\$"; then echo "$p"; return; fi
  done
  die "no free port"
}

wait_tcp() { # port: up to 15 s
  local i
  for i in $(seq 150); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

cpu_ticks() { # utime+stime of a pid, in clock ticks
  awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null || echo 0
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

kv() { # FILE KEY: the value of KEY on the last RESULT line
  [ -f "$1" ] || return 0 # a step not run (--no-http, --no-latency)
  awk -v k="$2" '/^RESULT /{for (i = 2; i <= NF; i++) {split($i, a, "="); if (a[1] == k) v = a[2]}} END {print (v == "" ? "" : v)}' "$1" 2>/dev/null
}

# seedpay_config FILE REDIS_PORT ADMIN_TOKEN ACCOUNTING(true|false) SESSIONS(local|redis):
# the benchmarks' seedpay configuration (the same for compare.sh and soak.sh).
seedpay_config() {
  cat >"$1" <<EOF
log: {level: info, format: json}
redis: {embedded: false, addr: "127.0.0.1:$2"}
tracker:
  announce_interval: 30m
  min_announce_interval: 15m
  default_numwant: 50
  max_numwant: 100
  max_scrape_infohashes: 50
  udp_max_clock_skew: 2m
  http_idle_timeout: 60s
access: {private: true}
peer_store: {peer_lifetime: 31m, gc_interval: 3m, shard_count: 1024}
api: {admin_token: "$3"}
rewards: {enabled: $4, sessions: $5}
payouts: {enabled: false}
EOF
}
