#!/usr/bin/env bash
# Overload benchmark: the release server under 11x its rate limit (the limit plus ten times
# more), to check that refusing the excess keeps allowed requests fast and memory bounded.
#
# Usage: bench/overload.sh [--limit R] [--overload X] [--seconds S] [--keep]
#   --limit R     the free tier's budget in requests per second (default 20; the server is
#                 started with --rate-limit-free R*3600)
#   --overload X  extra load in multiples of the limit (default 10: offered = R*(1+X) req/s)
#   --seconds S   length of the measured run (default 60)
#   --keep        keep the scratch directory (printed) instead of deleting it
# BENCH_DIR=DIR puts the scratch directory there (default: target/bench).
#
# Builds `pictograph` and the load generator (bench/loadgen) in release mode, starts
# `pictograph serve` on 127.0.0.1 with a fresh SQLite data directory and a free-tier key,
# spends the key's stored budget (a bucket holds an hour of requests), then sends GET
# /api/v1/developer/datasets/ open-loop at the offered rate. Prints requests/s, the counts
# of 200, 429 and anything else (which should be none), latency percentiles of allowed
# (200) requests apart from refusals, and the server's RSS sampled every second (max and
# final). Not a test: figures are printed, nothing is asserted beyond the run completing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
repo="$(cd "$here/.." && pwd)"
limit=20
overload=10
seconds=60
keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --limit) limit="$2"; shift 2 ;;
    --overload) overload="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
for n in "$limit" "$overload" "$seconds"; do
  [[ "$n" =~ ^[0-9]+$ && "$n" -gt 0 ]] || { echo "error: numbers must be positive integers" >&2; exit 2; }
done
offered=$((limit * (1 + overload)))

echo "building pictograph and the load generator (release)" >&2
(cd "$repo" && cargo build --release -q -p pictograph-cli -p pictograph-loadgen)
target="${CARGO_TARGET_DIR:-$repo/target}"
bin="$target/release/pictograph"
loadgen="$target/release/pictograph-loadgen"

mkdir -p "${BENCH_DIR:-$repo/target/bench}"
work="$(mktemp -d "${BENCH_DIR:-$repo/target/bench}/overload.XXXXXX")"
server_pid=""
sampler_pid=""
cleanup() {
  if [[ -n "$sampler_pid" ]]; then kill "$sampler_pid" 2>/dev/null || true; wait "$sampler_pid" 2>/dev/null || true; fi
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [[ "$keep" -eq 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

"$bin" serve --data-dir "$work/data" --listen 127.0.0.1:0 \
  --rate-limit-free $((limit * 3600)) >"$work/serve.out" 2>"$work/serve.err" &
server_pid=$!
url="$(listening_url "$work/serve.out" "$work/serve.err")"
key="$("$bin" keys create --data-dir "$work/data" --org bench --role member --tier free)"
echo "server at $url (pid $server_pid), free tier $limit req/s, offering $offered req/s for $seconds s" >&2

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status"; }
(
  while kill -0 "$server_pid" 2>/dev/null; do
    rss_kb
    sleep 1
  done
) >"$work/rss" &
sampler_pid=$!
"$loadgen" --url "$url/api/v1/developer/datasets/" --key "$key" --drain --rate "$offered" \
  --duration "$seconds"
sleep 1
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=""

samples="$(grep -c . "$work/rss")"
max_kb="$(sort -n "$work/rss" | tail -n 1)"
first_kb="$(head -n 1 "$work/rss")"
final_kb="$(tail -n 1 "$work/rss")"
mb() { awk -v k="$1" 'BEGIN {printf "%.1f MB", k / 1024}'; }
echo "server RSS every 10 s (MB): $(awk 'NR % 10 == 1 {printf "%.1f ", $1 / 1024}' "$work/rss")"
echo "server RSS ($samples samples, 1 s apart, from before draining to the end): first $(mb "$first_kb"), max $(mb "$max_kb"), final $(mb "$final_kb")"
