#!/usr/bin/env bash
# Concurrent annotation saves against two builds side by side (not a test).
#
# Usage: bench/saves_ab.sh OLD_BINARY NEW_BINARY [--rounds N] [--conns "1 8 64"] [--secs S]
#                          [--images N] [--postgres ADMIN_URL]
#
# Round after round, runs each build in turn (the order alternating between rounds): a server
# on a fresh data directory, N small images (default 256) uploaded by the build's own CLI,
# then, for each connection count, wrk saving one bounding box on a random one of those
# images (`POST /annotations/{id}`, a full replacement, so each save is one committed
# transaction) as fast as the connections allow for S seconds (default 4). Prints every
# figure, then per connection count both builds' median saves per second and p99 latency,
# with their ratios (old / new for latency, new / old for saves: above 1 when the new build
# is better). With --postgres, each server keeps its metadata in a fresh database of the
# PostgreSQL server at ADMIN_URL, dropped after its round.
# Needs wrk (Debian's package wrk). BENCH_DIR=DIR puts the scratch directory there (default:
# target/bench).
set -euo pipefail
shopt -s inherit_errexit

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

[[ $# -ge 2 ]] || { sed -n '2,17p' "$0"; exit 2; }
old="$(realpath "$1")" new="$(realpath "$2")"
shift 2
rounds=3 conns="1 8 64" secs=4 images=256 postgres=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --conns) conns="$2"; shift 2 ;;
    --secs) secs="$2"; shift 2 ;;
    --images) images="$2"; shift 2 ;;
    --postgres) postgres="${2%/}"; shift 2 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "error: wrk not found (apt-get install wrk)" >&2; exit 2; }
python="$(pillow_python)" || exit 2

work="${BENCH_DIR:-$repo/target/bench}/saves-ab"
rm -rf "$work"
mkdir -p "$work"
"$python" "$here/gen_images.py" "$work/src" --files "$images" --kb 5 >&2

# wrk's script: each request saves one box on an image picked at random from ids.txt.
cat >"$work/save.lua" <<'LUA'
local ids = {}
init = function(args)
  key = args[1]
  for line in io.lines(args[2]) do ids[#ids + 1] = line end
end
request = function()
  local id = ids[math.random(#ids)]
  local body = '{"image_id":"' .. id .. '","annotations":[{"id":"a1","name":"box",' ..
    '"type":"bbox","bounding_box":{"x":1.0,"y":2.0,"w":3.0,"h":4.0},' ..
    '"confidence":0.9,"attributes":[]}]}'
  return wrk.format("POST", "/api/v1/developer/annotations/" .. id,
    {["X-API-Key"] = key, ["Content-Type"] = "application/json"}, body)
end
LUA

# Reads wrk's report on standard input; prints "conns saves_per_s p99_ms failures".
parse='
import re, sys
text = sys.stdin.read()
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", text)
ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
errors = re.search(r"Socket errors:.*", text)
print(sys.argv[1], rate, ms, (int(bad.group(1)) if bad else 0) + (1 if errors else 0))
'

# Runs one build (in a subshell of its own: the server goes with it); prints a line of
# `parse` per connection count.
one() {
  local bin="$1" tag="$2" data="$work/data-$2" db="saves_ab_${2//-/_}" dbflag=()
  if [[ -n "$postgres" ]]; then
    fresh_database "$postgres" "$db"
    dbflag=(--database-url "$postgres/$db")
  fi
  rm -rf "$data"
  server_pid=""
  trap '[[ -z "$server_pid" ]] || kill "$server_pid" 2>/dev/null || true' EXIT
  start_server "$bin" "$data" "${dbflag[@]}"
  local url="$PICTOGRAPH_BASE_URL" key="$PICTOGRAPH_API_KEY"
  "$bin" upload "$work/src" --dataset saves --json >/dev/null
  "$bin" images list --dataset saves --ids >"$work/ids.txt"
  [[ "$(wc -l <"$work/ids.txt")" -eq "$images" ]] || { echo "error: ids missing" >&2; return 1; }
  for c in $conns; do
    local threads=$((c < 2 ? 1 : 2)) out
    out="$(wrk -t"$threads" -c"$c" -d"${secs}s" --latency -s "$work/save.lua" "$url" \
      -- "$key" "$work/ids.txt")"
    "$python" -c "$parse" "$c" <<<"$out"
  done
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  rm -rf "$data"
  [[ -n "$postgres" ]] && psql_admin "$postgres" "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  return 0
}

results="$work/results"
: >"$results"
for round in $(seq 1 "$rounds"); do
  order=(old new)
  (( round % 2 == 0 )) && order=(new old)
  for side in "${order[@]}"; do
    bin="$old"
    [[ "$side" == new ]] && bin="$new"
    one "$bin" "$side-$round" | sed "s/^/$side $round /" | tee -a "$results" >&2
  done
done

"$python" - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
if any(int(r[5]) for r in rows):
    print("warning: some saves failed (last column)", file=sys.stderr)
by = {}
for side, _, c, rate, p99, _ in rows:
    by.setdefault((side, int(c)), []).append((float(rate), float(p99)))
print(f"{'conns':>5} {'old saves/s':>12} {'new saves/s':>12} {'ratio':>6}"
      f" {'old p99 ms':>11} {'new p99 ms':>11} {'ratio':>6}")
for c in sorted({c for _, c in by}):
    o = by[("old", c)]; n = by[("new", c)]
    orate = statistics.median(r for r, _ in o); nrate = statistics.median(r for r, _ in n)
    op99 = statistics.median(p for _, p in o); np99 = statistics.median(p for _, p in n)
    print(f"{c:>5} {orate:>12.0f} {nrate:>12.0f} {nrate / orate:>6.2f}"
          f" {op99:>11.2f} {np99:>11.2f} {op99 / np99:>6.2f}")
PY
