#!/usr/bin/env bash
# Announce throughput with signed receipts flowing vs not: bench/compare.sh
# with only "seedpay-on" and "seedpay-receipts" (accounting on, plus
# bench/receiptload posting receipts at a fixed rate), no 1M step, repeated
# for --rounds rounds with the order of the two alternated (the machine's
# load drifts), then every ratio (with / without, same round) and the medians.
#
#   bench/receipts.sh                       # 3 rounds, 10 s per measurement: about 10 minutes
#   bench/receipts.sh --rounds 1 --quick    # one 2-s round: a smoke test
#
# Options: --rounds N (1..9, default 3); everything else goes to compare.sh
# (--quick, --duration N, --rev REV, --receipt-rate N, --receipt-batch N,
# --keep). A --rev is resolved once, so every round measures the same commit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=3
ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
    --rounds=*) ROUNDS=${1#*=} ;;
    --rev) ARGS+=(--rev "$(git -C "$ROOT" rev-parse --verify "${2:?}^{commit}")"); shift ;;
    --rev=*) ARGS+=(--rev "$(git -C "$ROOT" rev-parse --verify "${1#*=}^{commit}")") ;;
    --trackers*|--no-1m) echo "receipts.sh: $1 is set here" >&2; exit 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) ARGS+=("$1") ;;
  esac
  shift
done
case $ROUNDS in [1-9]) ;; *) echo "receipts.sh: --rounds must be 1..9" >&2; exit 2 ;; esac

OUT=$(mktemp -d /tmp/seedpay-receipts.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
for r in $(seq "$ROUNDS"); do
  order="seedpay-on seedpay-receipts"
  [ $(( r % 2 )) = 0 ] && order="seedpay-receipts seedpay-on"
  echo "receipts.sh: round $r of $ROUNDS ($order)" >&2
  "$ROOT/bench/compare.sh" --no-1m --trackers "$order" "${ARGS[@]}" >"$OUT/$r.txt"
  cat "$OUT/$r.txt"
done

# The ratio lines of print_receipts:
# "- pinned: UDP announces/s 0.91, UDP announces per tracker CPU-s 0.88, HTTP announces/s 0.95, HTTP 1 conn each 0.97; receipts accepted ... (1000/s accepted) ..."
echo
echo "Receipts flowing vs not, every round (ratio = with / without, same round):"
echo
echo "| round | run | UDP announces/s | UDP announces per tracker CPU-s | HTTP announces/s | HTTP announces/s, 1 conn each | receipts accepted/s | load average at start |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for r in $(seq "$ROUNDS"); do
  load=$(sed -n 's/.*load average before: \([0-9.]*\).*/\1/p' "$OUT/$r.txt")
  awk -v r="$r" -v la="$load" '/^- (pinned|unpinned): UDP announces\/s/ {
      run = $2; sub(/:$/, "", run)
      match($0, /UDP announces\/s [0-9.-]+/); udp = substr($0, RSTART + 16, RLENGTH - 16)
      match($0, /per tracker CPU-s [0-9.-]+/); eff = substr($0, RSTART + 18, RLENGTH - 18)
      match($0, /HTTP announces\/s [0-9.-]+/); http = substr($0, RSTART + 17, RLENGTH - 17)
      match($0, /1 conn each [0-9.-]+/); cl = substr($0, RSTART + 12, RLENGTH - 12)
      match($0, /\([0-9]+\/s accepted\)/); acc = substr($0, RSTART + 1, RLENGTH - 13)
      printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r, run, udp, eff, http, cl, acc, la
    }' "$OUT/$r.txt"
done | tee "$OUT/rows"
for run in pinned unpinned; do
  awk -F' \\| ' -v run="$run" '$2 == run {for (i = 3; i <= 6; i++) v[i, ++n[i]] = $i}
    function median(i,   k, j, t, a) {
      for (k = 1; k <= n[i]; k++) a[k] = v[i, k]
      for (k = 1; k <= n[i]; k++) for (j = k + 1; j <= n[i]; j++) if (a[j] + 0 < a[k] + 0) {t = a[k]; a[k] = a[j]; a[j] = t}
      return n[i] % 2 ? a[(n[i] + 1) / 2] : sprintf("%.2f", (a[n[i] / 2] + a[n[i] / 2 + 1]) / 2)
    }
    END {if (n[3] > 0) printf "| median of %d | %s | %s | %s | %s | %s | | |\n", n[3], run, median(3), median(4), median(5), median(6)}' "$OUT/rows"
done
