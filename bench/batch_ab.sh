#!/usr/bin/env bash
# Batch requests of two builds of the server side by side (not a test).
#
# Usage: bench/batch_ab.sh OLD_BINARY NEW_BINARY [--rounds N] [--size N] [--batch K]
#                          [--pick spread|run] [--postgres ADMIN_URL]
#                          [--seed-with BINARY | --seed-each | --seed-dir DATA_DIR]
#                          [--distinct-hashes]
#
# Seeds one data directory of N images (default 1,000,000) with the old build through the
# scale tool (bench/scale), then, round after round, starts each build in turn on a fresh copy
# of it and sends one request at a time, 2 s apart, each naming K ids (default 100,000) spread
# evenly over the dataset (every N/K-th image: the worst case, where a batch touches nearly
# every page of the table and its indexes) or, with --pick run, K images in a row from the
# middle of the dataset (as a selection of one upload or one stretch of time): two status
# updates, two moves, archive, archive through the update route, restore, copy and permanent
# delete. Prints every time, then per operation both builds'
# medians and their ratio (old / new). The old build seeds, so a migration that only the new
# build has runs on its copies, as it would on a user's data. --seed-with seeds with a third
# build instead, for two builds whose migrations differ (each refuses a database the other
# migrated). --seed-each seeds twice, each build its own copy, for two builds that lay out a
# new database differently. --seed-dir copies a data directory seeded before (SQLite only; a
# scale tool run of the old build, e.g. one whose direct inserts wrote an older schema).
# --distinct-hashes gives every seeded image a hash of its own (the scale tool's images all
# share one, which PostgreSQL's btree indexes store once with a list of rows; real photos
# differ); there are no bytes behind them, so a permanent delete frees none (it still looks
# each hash up, as it would).
# SQLite by default; with --postgres (e.g. postgres://postgres@127.0.0.1:5434, a cluster of the
# sizing bench/scale.sh uses), the seed is database ab_seed and every run gets a copy of it
# (CREATE DATABASE … TEMPLATE), dropped afterwards.
# BENCH_DIR=DIR puts the scratch directory there (default: target/bench); it needs about 2 GB
# for the default size. SCALE_TOOL=PATH seeds with that build of the scale tool (one that writes
# the old build's schema, whose rows it inserts directly) instead of this checkout's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

[[ $# -ge 2 ]] || { sed -n '2,32p' "$0"; exit 2; }
old="$(realpath "$1")" new="$(realpath "$2")"
shift 2
rounds=3 size=1000000 batch=100000 pick=spread postgres="" seeder="" seed_each="" seed_dir="" distinct=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --pick) pick="$2"; shift 2
      [[ "$pick" == spread || "$pick" == run ]] || { echo "--pick: spread or run" >&2; exit 2; } ;;
    --postgres) postgres="${2%/}"; shift 2 ;;
    --seed-with) seeder="$(realpath "$2")"; shift 2 ;;
    --seed-each) seed_each=1; shift ;;
    --seed-dir) seed_dir="$(realpath "$2")"; shift 2 ;;
    --distinct-hashes) distinct=1; shift ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

echo "building the scale tool (release)" >&2
(cd "$repo" && cargo build --release -q -p pictograph-scale)
target="$(target_dir "$repo")"
scale_tool="${SCALE_TOOL:-$target/release/pictograph-scale}"
work="${BENCH_DIR:-$repo/target/bench}/batch-ab"
rm -rf "$work"
mkdir -p "$work"

db_flags=()
[[ -n "$postgres" ]] && db_flags=(--database-url "$postgres/ab_run")
# seed NAME BINARY: data directory $work/NAME, and on PostgreSQL database ab_NAME.
seed() {
  local seed_flags=()
  if [[ -n "$postgres" ]]; then
    fresh_database "$postgres" "ab_$1"
    seed_flags=(--postgres "$postgres/ab_$1")
  fi
  echo "seeding $size images with $2" >&2
  RUST_LOG=error "$scale_tool" --bin "$2" --work "$work/$1" \
    --sizes "$size" --batch 1000 --load-secs 0 --download-max 0 --upload-max 0 --delete-largest false \
    "${seed_flags[@]}" >"$work/$1.log"
  if [[ -n "$distinct" && -n "$postgres" ]]; then
    psql "$postgres/ab_$1" -v ON_ERROR_STOP=1 -q -f "$here/distinct_hashes.sql"
  fi
  if [[ -z "$postgres" ]]; then
    python3 - "$work/$1/data/pictograph.db" "$distinct" <<'EOF2'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
if sys.argv[2]:
    # Each image's hash made its own (the scale tool's images all share one).
    db.execute("UPDATE images SET blob_hash = randomblob(32)")
    db.commit()
    db.execute("VACUUM")
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
EOF2
  fi
}
[[ -n "$postgres" ]] && psql_admin "$postgres" "DROP DATABASE IF EXISTS ab_run WITH (FORCE)"
if [[ -n "$seed_dir" ]]; then
  [[ -z "$postgres" ]] || { echo "--seed-dir: SQLite only" >&2; exit 2; }
  [[ -z "$distinct" ]] || { echo "--distinct-hashes: not with --seed-dir" >&2; exit 2; }
  mkdir -p "$work/seed"
  cp -a "$seed_dir" "$work/seed/data"
elif [[ -n "$seed_each" ]]; then
  seed seed_old "$old"
  seed seed_new "$new"
else
  seed seed "${seeder:-$old}"
fi

page_before="$(fresh_page_cost)"
# The rounds run in a subshell (the pipe into tee): its own trap stops the server it started
# when a request fails.
{
server_pid=""
trap stop_server EXIT
for round in $(seq 1 "$rounds"); do
  for build in old new; do
    bin="$old"
    [[ "$build" == new ]] && bin="$new"
    seeded=seed
    [[ -n "$seed_each" ]] && seeded="seed_$build"
    rm -rf "$work/data"
    cp -a "$work/$seeded/data" "$work/data"
    if [[ -n "$postgres" ]]; then
      psql_admin "$postgres" "DROP DATABASE IF EXISTS ab_run WITH (FORCE)"
      psql_admin "$postgres" "CREATE DATABASE ab_run TEMPLATE ab_$seeded"
    fi
    key="$("$bin" keys create --data-dir "$work/data" "${db_flags[@]}" --org bench --role owner --tier unlimited |
      grep -o 'pk_[A-Za-z0-9_]*' | head -1)"
    PICTOGRAPH_LOG=error "$bin" serve --data-dir "$work/data" "${db_flags[@]}" --listen 127.0.0.1:0 \
      >"$work/serve.out" 2>"$work/serve.err" &
    server_pid=$!
    url="$(listening_url "$work/serve.out" "$work/serve.err")"
    python3 - "$url" "$key" "$size" "$batch" "$build" "$round" "$pick" <<'EOF'
import json, sys, time, urllib.request
url, key, size, batch, build, rnd, pick = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7]
if pick == "run":
    first = max((size - batch) // 2, 0) + 1
    numbers = range(first, first + batch)
else:
    step = max((size - 1) // batch, 1)
    numbers = (1 + j * step for j in range(batch))
ids = ["%08x-0000-4000-8000-%012x" % (1, n) for n in numbers]
name = f"scale-{size}"
requests = [
    ("status", "PATCH", "update", {"updates": {"status": "review"}}),
    ("status 2", "PATCH", "update", {"updates": {"status": "complete"}}),
    ("move", "POST", "move", {"target_folder_path": "/moved-1"}),
    ("move 2", "POST", "move", {"target_folder_path": "/moved-2"}),
    ("archive", "POST", "delete", {"permanent": False}),
    ("restore", "PATCH", "update", {"updates": {"is_archived": False}}),
    ("archive 2", "PATCH", "update", {"updates": {"is_archived": True}}),
    ("restore 2", "PATCH", "update", {"updates": {"is_archived": False}}),
    ("copy", "POST", "copy", {"target_folder_path": "/copies", "duplicate_handling": "rename"}),
    ("purge", "POST", "delete", {"permanent": True}),
]
for label, method, op, extra in requests:
    body = json.dumps({"dataset_name": name, "image_ids": ids, **extra}).encode()
    req = urllib.request.Request(f"{url}/api/v1/developer/batch/images/{op}", data=body,
                                 method=method, headers={"X-API-Key": key, "Content-Type": "application/json"})
    t = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            answer = json.load(r)
    except urllib.error.HTTPError as e:
        sys.exit(f"{label}: HTTP {e.code}: {e.read().decode()}")
    elapsed = time.monotonic() - t
    if answer.get("processed") != batch:
        sys.exit(f"{label}: processed {answer.get('processed')} of {batch}")
    print(f"{build}\t{label}\t{elapsed:.3f}\tround {rnd}", flush=True)
    time.sleep(2)
EOF
    stop_server
  done
done
} | tee "$work/times.tsv"
if [[ -n "$postgres" ]]; then
  psql_admin "$postgres" "DROP DATABASE IF EXISTS ab_run WITH (FORCE)"
  for db in ab_seed ab_seed_old ab_seed_new; do
    psql_admin "$postgres" "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  done
fi

[[ "$pick" == run ]] && picked="consecutive" || picked="spread"
python3 - "$work/times.tsv" "$batch" "$size" "$page_before" "$(fresh_page_cost)" "$picked" <<'EOF'
import collections, statistics, sys
times = collections.defaultdict(list)
for line in open(sys.argv[1]):
    build, label, secs, _ = line.rstrip("\n").split("\t")
    times[label, build].append(float(secs))
labels = list(dict.fromkeys(label for label, _ in times))
print(f"\n{int(sys.argv[2]):,} {sys.argv[6]} ids of {int(sys.argv[3]):,} images, medians"
      f" (first touch of fresh memory: {sys.argv[4]} µs per 4 KB page before, {sys.argv[5]} after):")
print(f"  {'operation':<10} {'old':>8} {'new':>8}   old/new")
for label in labels:
    o, n = statistics.median(times[label, "old"]), statistics.median(times[label, "new"])
    print(f"  {label:<10} {o:>7.2f}s {n:>7.2f}s   {o / n:.2f}")
EOF
