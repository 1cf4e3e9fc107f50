#!/usr/bin/env bash
# Backup benchmark (not a test): `pictograph backup` of a live installation against copies
# of the same data directory that give less.
#
# Usage: bench/backup.sh [--files N] [--rows M] [--runs R] [--keep]
#   --files N   images uploaded through the CLI (default 2000, a few hundred KB each)
#   --rows M    image rows added to the database beside them, all referring to the uploaded
#               bytes (default 0; 1000000 makes a million-image database), to time the
#               database copy at scale
#   --runs R    runs of each (default 3), alternating; medians are reported
#   --keep      keep the scratch directory (printed) instead of deleting it
# BENCH_DIR=DIR puts the scratch directory there (default: bench/ under cargo's target dir).
#
# Timed, each into a new directory while the server runs:
#   backup        pictograph backup (database copy in one read transaction, every stored
#                 file hashed, written, synced and renamed, its directory synced)
#   cp -r         cp -r of the data directory (no consistency, nothing synced)
#   durable+sha   bench/durable_copy.py --sha256 of the stored files alone: each file hashed,
#                 written, synced, renamed and its directory synced, 8 at once (the floor
#                 for a verified, crash-safe copy of the bytes)
# and into the last backup again: `backup` with nothing changed, and `backup --verify`
# (every file re-hashed, the database checked). Peak memory comes from /usr/bin/time.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
repo="$(cd "$here/.." && pwd)"
files=2000
rows=0
runs=3
keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --files) files="$2"; shift 2 ;;
    --rows) rows="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

python="$(pillow_python)" || exit 2
[[ -x /usr/bin/time ]] || { echo "error: /usr/bin/time is needed for peak memory" >&2; exit 2; }

echo "building pictograph (release)" >&2
(cd "$repo" && cargo build --release -q -p pictograph-cli)
target="$(target_dir "$repo")"
bin="$target/release/pictograph"
mkdir -p "${BENCH_DIR:-$target/bench}"
work="$(mktemp -d "${BENCH_DIR:-$target/bench}/backup.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [[ "$keep" == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "generating $files images" >&2
"$python" "$here/gen_images.py" "$work/src" --files "$files" >&2
data="$work/data"
start_server() {
  "$bin" serve --data-dir "$data" --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
  server_pid=$!
  PICTOGRAPH_BASE_URL="$(listening_url "$work/serve.out" "$work/serve.err")"
  export PICTOGRAPH_BASE_URL
}
unset PICTOGRAPH_CONFIG_DIR
PICTOGRAPH_API_KEY="$("$bin" keys create --data-dir "$data" --org bench --role owner --tier unlimited | grep -o 'pk_[A-Za-z0-9_]*' | head -1)"
export PICTOGRAPH_API_KEY
start_server
echo "uploading" >&2
"$bin" upload "$work/src" --dataset bench --json >"$work/upload.json"

if (( rows > 0 )); then
  echo "adding $rows image rows" >&2
  stop_server
  "$python" - "$data/pictograph.db" "$rows" <<'EOF'
import sqlite3, sys, uuid
db, rows = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(db)
c.execute("PRAGMA journal_mode = WAL")
org, = c.execute("SELECT org_id FROM datasets LIMIT 1").fetchone()
src, = c.execute("SELECT id FROM datasets LIMIT 1").fetchone()
ds = str(uuid.uuid4())
c.execute("INSERT INTO datasets (id, org_id, name, description, created_at, updated_at) "
          "SELECT ?, org_id, 'rows', '', created_at, updated_at FROM datasets WHERE id = ?", (ds, src))
seq, = c.execute("SELECT seq FROM datasets WHERE id = ?", (ds,)).fetchone()
src_seq, = c.execute("SELECT seq FROM datasets WHERE id = ?", (src,)).fetchone()
cols = [r[1] for r in c.execute("PRAGMA table_info(images)")]
rest = [x for x in cols if x not in ("id", "dataset_seq", "filename")]
template = c.execute(f"SELECT {', '.join(rest)} FROM images WHERE dataset_seq = ? ORDER BY id", (src_seq,)).fetchall()
step = 100_000
for start in range(0, rows, step):
    batch = [(f"{uuid.UUID(int=(1 << 120) + i)}", seq, f"row_{i:07d}.jpg", *template[i % len(template)])
             for i in range(start, min(rows, start + step))]
    c.executemany(f"INSERT INTO images (id, dataset_seq, filename, {', '.join(rest)}) VALUES "
                  f"({', '.join('?' * (3 + len(rest)))})", batch)
    c.commit()
c.close()
EOF
  start_server
fi
db_mb=$(du -sm "$data/pictograph.db" | cut -f1)
bytes=$(du -sb "$data/blobs" | cut -f1)

# Runs a command under /usr/bin/time and appends "seconds peak_kb" to the file $1.
timed() {
  local out="$1"; shift
  sync
  if ! /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/last.out" 2>"$work/last.err"; then
    echo "error: failed: $*" >&2; cat "$work/last.out" "$work/last.err" >&2; exit 1
  fi
  cat "$work/time" >>"$out"
  echo "  ${out##*/}: $(cat "$work/time") (s, peak KB)" >&2
}

page_before="$(fresh_page_cost)"
mkdir -p "$work/results" "$work/out"
for r in $(seq 1 "$runs"); do
  echo "run $r" >&2
  timed "$work/results/backup" "$bin" backup "$work/out/backup-$r" --data-dir "$data" --json
  timed "$work/results/cp" cp -r "$data" "$work/out/cp-$r"
  timed "$work/results/durable" "$python" "$here/durable_copy.py" --sha256 "$data/blobs" "$work/out/durable-$r" 8
  timed "$work/results/again" "$bin" backup "$work/out/backup-$r" --data-dir "$data" --json
  timed "$work/results/verify" "$bin" backup "$work/out/backup-$r" --data-dir "$data" --verify --json
  rm -rf "$work/out"/*
done

"$python" - "$work/results" "$files" "$rows" "$bytes" "$db_mb" "$page_before" "$(fresh_page_cost)" <<'EOF'
import statistics, sys
from pathlib import Path
res, files, rows, nbytes, db_mb, p0, p1 = sys.argv[1:]
def load(name):
    lines = (Path(res) / name).read_text().split("\n")
    pairs = [l.split() for l in lines if l.strip()]
    return statistics.median(float(a) for a, _ in pairs), max(int(b) for _, b in pairs) / 1024
print(f"\n{files} files ({int(nbytes) / 1e6:.0f} MB) and {int(files) + int(rows)} images "
      f"({db_mb} MB database); fresh memory {p0} -> {p1} us per page; medians:")
b, _ = load("backup")
for name, label in [("backup", "pictograph backup"), ("cp", "cp -r of the data directory"),
                    ("durable", "durable+sha copy of the stored files"),
                    ("again", "backup again, nothing changed"),
                    ("verify", "backup again --verify")]:
    t, mem = load(name)
    print(f"  {label:<40} {t:7.2f} s  peak {mem:6.0f} MB  backup/this {b / max(t, 0.005):5.2f}")
EOF
