#!/usr/bin/env bash
# GET /images/{id}/metadata under load, two builds of the server side by side (not a test).
#
# Usage: bench/metadata_ab.sh OLD_BINARY NEW_BINARY [--rounds N] [--size N] [--secs S]
#                             [--postgres ADMIN_URL] [--annotations N]
#
# Round after round, each build in turn runs the throughput part of the scale tool
# (bench/scale) on a fresh dataset of N images (default 100,000): 64 connections for S seconds
# (default 10) on one image's metadata, on a bare axum handler, on the one image again, then
# over N-1 ids spread over the dataset (more than the read cache keeps). Prints each run, then
# per build the medians of the spread and one-id req/s and of their ratios to the bare handler
# measured in the same run, and new / old. With --annotations N every image is labelled with N
# boxes, and each run also reads the annotation lists (GET /annotations/{id}) over the spread
# ids: their req/s and p99 join the medians.
# SQLite by default; with --postgres (e.g. postgres://postgres@127.0.0.1:5434, a cluster of the
# sizing bench/scale.sh uses) every run gets a fresh database metadata_ab, dropped afterwards.
# BENCH_DIR=DIR puts the scratch directory there (default: target/bench). OLD_SCALE_TOOL=PATH
# runs the old build with that build of the scale tool (one whose direct inserts write the old
# build's schema).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

[[ $# -ge 2 ]] || { sed -n '2,19p' "$0"; exit 2; }
old="$(realpath "$1")" new="$(realpath "$2")"
shift 2
rounds=3 size=100000 secs=10 postgres="" annotations=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --secs) secs="$2"; shift 2 ;;
    --postgres) postgres="${2%/}"; shift 2 ;;
    --annotations) annotations="$2"; shift 2 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

echo "building the scale tool (release)" >&2
(cd "$repo" && cargo build --release -q -p pictograph-scale)
target="$(target_dir "$repo")"
work="${BENCH_DIR:-$repo/target/bench}/metadata-ab"
mkdir -p "$work"

for round in $(seq 1 "$rounds"); do
  for build in old new; do
    bin="$old" tool="${OLD_SCALE_TOOL:-$target/release/pictograph-scale}"
    [[ "$build" == new ]] && bin="$new" tool="$target/release/pictograph-scale"
    rm -rf "$work/run"
    db_flags=()
    if [[ -n "$postgres" ]]; then
      fresh_database "$postgres" metadata_ab
      db_flags=(--postgres "$postgres/metadata_ab")
    fi
    RUST_LOG=error "$tool" --bin "$bin" --work "$work/run" \
      --sizes "$size" --batch 1000 --download-max 0 --upload-max 0 --delete-largest false \
      --load-secs "$secs" --annotations "$annotations" "${db_flags[@]}" >"$work/run.log"
    python3 - "$work/run.log" "$build" "$round" <<'EOF'
import re, sys
log, build, rnd = sys.argv[1], sys.argv[2], sys.argv[3]
rps = {}
for line in open(log):
    m = re.match(r"\s+(pictograph again|pictograph|bare axum|ours, \d+ ids|annotations, \d+ ids)\s+(\d+) req/s.*p99\s+([\d.]+) ms", line)
    if m:
        rps[m.group(1).split(",")[0]] = (float(m.group(2)), float(m.group(3)))
if len(rps) < 4:
    sys.exit(f"the throughput lines are missing from {log}")
one = max(rps["pictograph"][0], rps["pictograph again"][0])
bare, spread, p99 = rps["bare axum"][0], rps["ours"][0], rps["ours"][1]
lists = ""
if "annotations" in rps:
    lists = f"\t{round(rps['annotations'][0])}\t{rps['annotations'][1]}"
print(f"{build}\t{round(one)}\t{round(bare)}\t{round(spread)}\t{p99}\t{one / bare:.3f}\t{spread / bare:.3f}{lists}\tround {rnd}", flush=True)
EOF
  done
done | tee "$work/runs.tsv"
if [[ -n "$postgres" ]]; then
  psql_admin "$postgres" "DROP DATABASE IF EXISTS metadata_ab WITH (FORCE)"
fi
rm -rf "$work/run"

python3 - "$work/runs.tsv" "$size" <<'EOF'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    build, *cols, _ = line.rstrip("\n").split("\t")
    runs[build].append([float(c) for c in cols])
names = ["one id req/s", "bare req/s", "spread req/s", "spread p99 ms", "one id / bare", "spread / bare",
         "lists req/s", "lists p99 ms"]
print(f"\nmedians over {len(runs['old'])} runs each, dataset of {int(sys.argv[2]):,} images:")
print(f"  {'':<15} {'old':>9} {'new':>9}   new/old")
for i, name in enumerate(names[:len(runs["old"][0])]):
    o = statistics.median(r[i] for r in runs["old"])
    n = statistics.median(r[i] for r in runs["new"])
    print(f"  {name:<15} {o:>9.2f} {n:>9.2f}   {n / o:.2f}")
EOF
