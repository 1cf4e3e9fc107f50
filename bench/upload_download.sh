#!/usr/bin/env bash
# Upload/download benchmark: our CLI vs the official Python client (pictograph 1.6.3) vs cp -r.
#
# Usage: bench/upload_download.sh [--files N] [--runs R] [--workers W] [--keep]
#   --files N    images to generate (default 2000; a few hundred KB each, JPEG and PNG,
#                in class sub-folders)
#   --runs R     runs of each measurement (default 3); medians are reported
#   --workers W  --workers passed to our CLI (default: the CLI's own default)
#   --keep       keep the scratch directory (printed) instead of deleting it
# BENCH_DIR=DIR puts the scratch directory there (default: target/bench).
#
# Builds `pictograph` in release mode (under $CARGO_TARGET_DIR when set), starts `pictograph serve` on 127.0.0.1 with a fresh
# data directory, and times whole commands (process start to exit), every run into a fresh
# dataset or directory, all on warm page caches:
#   upload:   pictograph upload | Python upload_dataset_from_folder | cp -r of the folder
#   download: pictograph download | Python datasets.download(mode="full") | cp -r
# Python: tests/compat/.venv (made by `bash tests/compat/run.sh --co -q`), or $PYTHON, or a
# venv made here in bench/.venv. Not a test: nothing is asserted beyond every run succeeding.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
files=2000
runs=3
workers=""
keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --files) files="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

# ── Python with pictograph 1.6.3 and Pillow ──
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$repo/tests/compat/.venv/bin/python" ]]; then
    python="$repo/tests/compat/.venv/bin/python"
  else
    python="$here/.venv/bin/python"
    if [[ ! -x "$python" ]]; then
      echo "creating bench/.venv (pictograph==1.6.3, pillow)" >&2
      python3 -m venv "$here/.venv"
      "$python" -m pip install --quiet --disable-pip-version-check pictograph==1.6.3 pillow==13.0.0
    fi
  fi
fi
"$python" -c 'import pictograph, PIL' || { echo "error: $python lacks pictograph or Pillow" >&2; exit 2; }

echo "building pictograph (release)" >&2
(cd "$repo" && cargo build --release -q -p pictograph-cli)
bin="${CARGO_TARGET_DIR:-$repo/target}/release/pictograph"

# Scratch space (about 3x the generated data at peak): under target/ unless BENCH_DIR says.
mkdir -p "${BENCH_DIR:-$repo/target/bench}"
work="$(mktemp -d "${BENCH_DIR:-$repo/target/bench}/run.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [[ "$keep" == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "generating $files images" >&2
"$python" "$here/gen_images.py" "$work/src" --files "$files" >&2
bytes=$(du -sb "$work/src" | cut -f1)

# ── the server ──
"$bin" serve --data-dir "$work/data" --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
server_pid=$!
url=""
for _ in $(seq 1 100); do
  url="$(sed -n 's/^listening on //p' "$work/serve.out" 2>/dev/null || true)"
  [[ -n "$url" ]] && break
  sleep 0.1
done
[[ -n "$url" ]] || { echo "error: the server did not start:" >&2; cat "$work/serve.err" >&2; exit 1; }
key="$(sed -n 's/^  \(pk_[A-Za-z0-9_]*\)$/\1/p' "$work/serve.out" | head -1)"
[[ -n "$key" ]] || { echo "error: no key in the server's first-start output" >&2; exit 1; }
export PICTOGRAPH_BASE_URL="$url" PICTOGRAPH_API_KEY="$key"
unset PICTOGRAPH_CONFIG_DIR
echo "server at $url" >&2

# Runs a command, checks it succeeded, and appends its wall time in seconds to $1.
timed() {
  local out="$1"; shift
  local t0 t1
  t0=$(date +%s%N)
  if ! "$@" >"$work/last.out" 2>"$work/last.err"; then
    echo "error: failed: $*" >&2; cat "$work/last.out" "$work/last.err" >&2; exit 1
  fi
  t1=$(date +%s%N)
  echo "$(( (t1 - t0) / 1000000 ))" | awk '{printf "%.3f\n", $1/1000}' >>"$out"
}

wflag=()
[[ -n "$workers" ]] && wflag=(--workers "$workers")
for i in $(seq 1 "$runs"); do
  echo "run $i/$runs: upload" >&2
  timed "$work/up_ours" "$bin" upload "$work/src" --dataset "ours-$i" --json "${wflag[@]}"
  "$python" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["uploaded"]==int(sys.argv[2]) and d["failed"]==0, d' \
    "$work/last.out" "$files"
  timed "$work/up_py" "$python" "$here/py_client.py" upload "$work/src" "py-$i"
  timed "$work/up_cp" cp -r "$work/src" "$work/cp-$i"
  rm -rf "$work/cp-$i"

  echo "run $i/$runs: download" >&2
  timed "$work/dl_ours" "$bin" download ours-1 "$work/dl-ours-$i" --json "${wflag[@]}"
  "$python" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["images_downloaded"]==int(sys.argv[2]) and d["failed"]==0, d' \
    "$work/last.out" "$files"
  rm -rf "$work/dl-ours-$i"
  timed "$work/dl_py" "$python" "$here/py_client.py" download ours-1 "$work/dl-py-$i"
  rm -rf "$work/dl-py-$i"
  timed "$work/dl_cp" cp -r "$work/src" "$work/cpdl-$i"
  rm -rf "$work/cpdl-$i"
done

"$python" - "$work" "$files" "$bytes" "$runs" "$(nproc)" <<'EOF'
import statistics, sys
work, files, nbytes, runs, cpus = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
med = lambda n: statistics.median(float(x) for x in open(f"{work}/{n}").read().split())
print(f"\n{files} files, {nbytes / 1e6:.0f} MB, median of {runs} runs, {cpus} CPUs, warm cache")
print(f"{'':10}{'ours':>9}{'python':>9}{'cp -r':>9}{'python/ours':>13}{'ours/cp':>9}{'ours MB/s':>11}")
for op in ("upload", "download"):
    p = "up" if op == "upload" else "dl"
    o, py, cp = med(f"{p}_ours"), med(f"{p}_py"), med(f"{p}_cp")
    print(f"{op:10}{o:8.2f}s{py:8.2f}s{cp:8.2f}s{py / o:12.1f}x{o / cp:8.1f}x{nbytes / 1e6 / o:11.0f}")
EOF
