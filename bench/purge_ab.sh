#!/usr/bin/env bash
# Permanent deletes that free their bytes, two builds of the server side by side (not a test).
#
# Usage: bench/purge_ab.sh OLD_BINARY NEW_BINARY [--rounds N] [--files K] [--postgres ADMIN_URL]
#
# The seeded benchmarks give every image the same bytes, so a permanent delete there frees
# one file. Here each image has bytes of its own, as uploads of real photos do: K tiny PNGs
# (default 20,000, each different), uploaded by each build's own CLI into a fresh server whose
# grace period for unreferenced bytes is 0, then deleted for good in one batch request (at
# most 100,000 ids), which frees all K files before it answers. Round after round, builds
# alternating; prints each delete's time, checks that no file is left, then both builds'
# medians and their ratio (old / new).
# SQLite by default; with --postgres (e.g. postgres://postgres@127.0.0.1:5434) every run gets a
# fresh database purge_ab, dropped afterwards. BENCH_DIR=DIR puts the scratch directory there
# (default: target/bench).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

[[ $# -ge 2 ]] || { sed -n '2,16p' "$0"; exit 2; }
old="$(realpath "$1")" new="$(realpath "$2")"
shift 2
rounds=3 files=20000 postgres=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --files) files="$2"; shift 2 ;;
    --postgres) postgres="${2%/}"; shift 2 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
((files >= 1 && files <= 100000)) || { echo "--files: 1 to 100,000 (one request)" >&2; exit 2; }

work="${BENCH_DIR:-$repo/target/bench}/purge-ab"
rm -rf "$work"
mkdir -p "$work"

# K valid 1×1 PNGs, each with a pixel of its own (so K different hashes).
python3 - "$work/images" "$files" <<'EOF'
import os, struct, sys, zlib
out, n = sys.argv[1], int(sys.argv[2])
os.makedirs(out)
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
head = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
for i in range(n):
    pixel = b"\x00" + bytes([i & 255, (i >> 8) & 255, (i >> 16) & 255])
    with open(f"{out}/p{i:06}.png", "wb") as f:
        f.write(head + chunk(b"IDAT", zlib.compress(pixel)) + chunk(b"IEND", b""))
EOF

db_flags=()
[[ -n "$postgres" ]] && db_flags=(--database-url "$postgres/purge_ab")
# The rounds run in a subshell (the pipe into tee): its own trap stops the server it started
# when a step fails.
{
server_pid=""
trap stop_server EXIT
for round in $(seq 1 "$rounds"); do
  for build in old new; do
    bin="$old"
    [[ "$build" == new ]] && bin="$new"
    rm -rf "$work/data"
    [[ -n "$postgres" ]] && fresh_database "$postgres" purge_ab
    PICTOGRAPH_LOG=error PICTOGRAPH_BLOB_GRACE_SECS=0 start_server "$bin" "$work/data" "${db_flags[@]}"
    "$bin" upload "$work/images" --dataset purge >/dev/null 2>"$work/upload.err" ||
      { cat "$work/upload.err" >&2; exit 1; }
    "$bin" images list --dataset purge --ids >"$work/ids"
    stored="$(find "$work/data/blobs" -type f | wc -l)"
    [[ "$stored" -ge "$files" ]] || { echo "only $stored files stored of $files" >&2; exit 1; }
    python3 - "$work/ids" "$build" "$round" <<'EOF'
import json, os, sys, time, urllib.request
ids = open(sys.argv[1]).read().split()
body = json.dumps({"dataset_name": "purge", "image_ids": ids, "permanent": True}).encode()
req = urllib.request.Request(
    os.environ["PICTOGRAPH_BASE_URL"] + "/api/v1/developer/batch/images/delete", data=body,
    method="POST",
    headers={"X-API-Key": os.environ["PICTOGRAPH_API_KEY"], "Content-Type": "application/json"})
t = time.monotonic()
try:
    with urllib.request.urlopen(req, timeout=600) as r:
        answer = json.load(r)
except urllib.error.HTTPError as e:
    sys.exit(f"HTTP {e.code}: {e.read().decode()}")
elapsed = time.monotonic() - t
if answer.get("processed") != len(ids):
    sys.exit(f"processed {answer.get('processed')} of {len(ids)}")
print(f"{sys.argv[2]}\t{elapsed:.3f}\tround {sys.argv[3]}", flush=True)
EOF
    left="$(find "$work/data/blobs" -type f | wc -l)"
    [[ "$left" -eq 0 ]] || { echo "$build: $left files left after the delete" >&2; exit 1; }
    stop_server
  done
done
} | tee "$work/times.tsv"
[[ -n "$postgres" ]] && psql_admin "$postgres" "DROP DATABASE IF EXISTS purge_ab WITH (FORCE)"

python3 - "$work/times.tsv" "$files" <<'EOF'
import collections, statistics, sys
times = collections.defaultdict(list)
for line in open(sys.argv[1]):
    build, secs, _ = line.rstrip("\n").split("\t")
    times[build].append(float(secs))
o, n = statistics.median(times["old"]), statistics.median(times["new"])
print(f"\npermanent delete of {int(sys.argv[2]):,} images with bytes of their own, medians:")
print(f"  old {o:.2f} s, new {n:.2f} s, old/new {o / n:.2f}")
EOF
rm -rf "$work/data" "$work/images"
