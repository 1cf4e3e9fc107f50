#!/usr/bin/env bash
# Upload memory benchmark: the server's peak memory while it checks uploads that are small
# files but large pictures (GIF, TIFF and WebP are checked by decoding them whole), with the
# default memory budgets and with the budgets off, side by side.
#
# Usage: bench/upload_memory.sh [--files N] [--side PX] [--workers W] [--keep]
#   --files N    files of each format, GIF, TIFF and WebP (default 4)
#   --side PX    width and height of every picture (default 11000: 121 megapixels, files of
#                a few KB to 1 MB, each taking several hundred MB to decode)
#   --workers W  parallel uploads of the CLI (default 12)
#   --keep       keep the scratch directory (printed) instead of deleting it
# PYTHON=python3 with Pillow writes the files. BENCH_DIR=DIR puts the scratch directory there
# (default: target/bench).
#
# Builds `pictograph` in release mode; for each setting starts `pictograph serve` on a fresh
# SQLite data directory, uploads the folder with `pictograph upload`, and prints the
# server's peak resident memory (VmHWM), the upload's time and how many files were
# stored. Not a test: figures are printed, nothing is asserted beyond every upload passing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
repo="$(cd "$here/.." && pwd)"
files=4
side=11000
workers=12
keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --files) files="$2"; shift 2 ;;
    --side) side="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
for n in "$files" "$side" "$workers"; do
  [[ "$n" =~ ^[0-9]+$ && "$n" -gt 0 ]] || { echo "error: numbers must be positive integers" >&2; exit 2; }
done

echo "building pictograph (release)" >&2
(cd "$repo" && cargo build --release -q -p pictograph-cli)
bin="$(target_dir "$repo")/release/pictograph"

mkdir -p "${BENCH_DIR:-$repo/target/bench}"
work="$(mktemp -d "${BENCH_DIR:-$repo/target/bench}/upload_memory.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [[ "$keep" -eq 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "writing $files GIF, TIFF and WebP files of ${side}x${side} pixels" >&2
"${PYTHON:-python3}" - "$work/folder/big" "$files" "$side" <<'PY'
import os, sys
from PIL import Image
out, files, side = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
Image.MAX_IMAGE_PIXELS = None
os.makedirs(out, exist_ok=True)
for i in range(files):
    colour = (30 + i, 120, 200)
    rgb = Image.new("RGB", (side, side), colour)
    rgb.save(f"{out}/t{i}.tif", compression="tiff_deflate")
    rgb.save(f"{out}/w{i}.webp", lossless=True)
    Image.new("P", (side, side), i % 256).save(f"{out}/g{i}.gif")
PY
du -sh "$work/folder" | awk '{print "folder: " $1 " on disk"}' >&2

# Uploads the folder into a fresh server started with the flags given; prints one row.
run() {
  local label="$1"; shift
  local data="$work/data-$label"
  "$bin" serve --data-dir "$data" --listen 127.0.0.1:0 "$@" >"$work/serve.out" 2>"$work/serve.err" &
  server_pid=$!
  local url key start end stored
  url="$(listening_url "$work/serve.out" "$work/serve.err")"
  key="$(sed -n 's/^ *\(pk_live_[0-9a-f]*\)$/\1/p' "$work/serve.out")"
  start=$(date +%s.%N)
  PICTOGRAPH_API_KEY="$key" PICTOGRAPH_BASE_URL="$url" "$bin" upload "$work/folder" \
    --dataset memory --workers "$workers" --json >"$work/upload.json"
  end=$(date +%s.%N)
  stored=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["uploaded"])' "$work/upload.json")
  printf '%-22s %10d MB %9.2f s %7s\n' "$label" \
    "$(( $(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status") / 1024 ))" \
    "$(echo "$end - $start" | bc)" "$stored"
  stop_server
}

printf '%-22s %13s %11s %7s\n' "server" "peak memory" "upload" "stored"
run "default budgets"
run "budgets off" --upload-memory-bytes 0 --decode-memory-bytes 0
