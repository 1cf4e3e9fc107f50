#!/usr/bin/env bash
# Upload/download benchmark: our CLI vs the official Python client (pictograph 1.6.3) vs cp -r,
# and optionally vs Label Studio 1.23 importing and exporting the same folder over its API.
#
# Usage: bench/upload_download.sh [--files N] [--kb KB] [--runs R] [--py-runs P]
#                                 [--label-studio] [--ls-runs L] [--ls-batch B] [--ls-parallel Q]
#                                 [--workers W] [--keep]
#   --files N        images to generate (default 2000; JPEG and PNG in class sub-folders)
#   --kb KB          average file size to aim for, in KB (default: the generator's sizes,
#                    about 280 KB); `--files 10000 --kb 200` makes about 2 GB
#   --runs R         runs of our CLI and of cp -r (default 3); medians are reported
#   --py-runs P      runs of the Python client (default R; it is the slow one at scale)
#   --label-studio   also time Label Studio 1.23 (installed into bench/.venv-labelstudio,
#                    started on 127.0.0.1 with a fresh data directory, version check and
#                    analytics off; see bench/ls_client.py for the API calls)
#   --ls-runs L      runs of Label Studio (default P)
#   --ls-batch B     files per Label Studio import request (default 100: its
#                    DATA_UPLOAD_MAX_NUMBER_FILES)
#   --ls-parallel Q  Label Studio import requests in flight at once (default 1)
#   --workers W      --workers passed to our CLI (default: the CLI's own default)
#   --keep           keep the scratch directory (printed) instead of deleting it
# BENCH_DIR=DIR puts the scratch directory there (default: bench/ under cargo's target dir).
#
# Builds `pictograph` in release mode (under $CARGO_TARGET_DIR when set) and times whole
# commands (process start to exit), every run into a fresh dataset or directory, all on warm
# page caches:
#   upload:   pictograph upload | Python upload_dataset_from_folder | cp -r of the folder
#             | cp -r then sync (the server answers an upload once its bytes are on disk;
#               a download, like cp, does not sync)
#             | durable copy (bench/durable_copy.py: each file written to a temporary name,
#               synced, renamed and its directory synced, as many at once as the CLI
#               uploads (--workers, or its default of 16); the floor for an upload that is
#               durable once acknowledged)
#             | durable copy + SHA-256 (the same with each file hashed before it is written,
#               as the server hashes to store bytes by content: the floor for our upload)
#             | Label Studio: create a project, then POST the files to its import endpoint
#   download: pictograph download | Python datasets.download(mode="full") | cp -r
#             | Label Studio: its YOLO_WITH_IMAGES export (a zip of every image), unpacked
# The server stores bytes by content, so every upload measured goes to a `pictograph serve`
# on 127.0.0.1 with a fresh data directory rather than finding the bytes already there.
# Nothing is deleted during a run: its outputs are deleted between runs (see `settle`), so
# scratch peaks near 9x the generated data (12x with Label Studio, whose import keeps a copy
# and whose export stages a zip).
# Python: tests/compat/.venv (made by `bash tests/compat/run.sh --co -q`), or $PYTHON, or a
# venv made here in bench/.venv. Not a test: nothing is asserted beyond every run succeeding.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
repo="$(cd "$here/.." && pwd)"
files=2000
kb=""
runs=3
py_runs=""
ls_on=0
ls_runs=""
ls_batch=100
ls_parallel=1
workers=""
keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --files) files="$2"; shift 2 ;;
    --kb) kb="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --py-runs) py_runs="$2"; shift 2 ;;
    --label-studio) ls_on=1; shift ;;
    --ls-runs) ls_runs="$2"; shift 2 ;;
    --ls-batch) ls_batch="$2"; shift 2 ;;
    --ls-parallel) ls_parallel="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
py_runs="${py_runs:-$runs}"
ls_runs="${ls_runs:-$py_runs}"
[[ "$ls_on" == 1 ]] || ls_runs=0
if (( py_runs > runs || ls_runs > runs )); then
  echo "error: --py-runs and --ls-runs cannot exceed --runs" >&2; exit 2
fi

# ── Python with pictograph 1.6.3 and Pillow ──
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$repo/tests/compat/.venv/bin/python" ]]; then
    python="$repo/tests/compat/.venv/bin/python"
  else
    python="$here/.venv/bin/python"
    # Made, or completed (another script may have made it with Pillow alone), on first use.
    if ! "$python" -c 'import pictograph, PIL' 2>/dev/null; then
      echo "installing pictograph==1.6.3 and pillow into bench/.venv" >&2
      [[ -x "$python" ]] || python3 -m venv "$here/.venv"
      "$python" -m pip install --quiet --disable-pip-version-check pictograph==1.6.3 pillow==13.0.0
    fi
  fi
fi
"$python" -c 'import pictograph, PIL' || { echo "error: $python lacks pictograph or Pillow" >&2; exit 2; }

# ── Label Studio 1.23 in a venv of its own (its dependencies pin Django and much else) ──
# It asks for any sentry-sdk, and passes an option at start-up that sentry-sdk 3 no longer
# takes (it then stops with "Unknown option 'send_default_pii'"): the 2.x line is kept.
ls_bin="$here/.venv-labelstudio/bin"
ls_packages=('label-studio==1.23.*' 'sentry-sdk<3')
if [[ "$ls_on" == 1 ]]; then
  if [[ ! -x "$ls_bin/label-studio" ]]; then
    echo "creating bench/.venv-labelstudio (${ls_packages[*]})" >&2
    python3 -m venv "$here/.venv-labelstudio"
    "$ls_bin/python" -m pip install --quiet --disable-pip-version-check "${ls_packages[@]}"
  fi
  versions="$("$ls_bin/python" -c 'import importlib.metadata as m; print(m.version("label-studio"), m.version("sentry-sdk"))')"
  read -r ls_version sentry_version <<<"$versions"
  [[ "$ls_version" == 1.23.* ]] || { echo "error: bench/.venv-labelstudio has label-studio $ls_version, not 1.23" >&2; exit 2; }
  if [[ "${sentry_version%%.*}" -ge 3 ]]; then
    echo "bench/.venv-labelstudio: sentry-sdk $sentry_version → 2.x" >&2
    "$ls_bin/python" -m pip install --quiet --disable-pip-version-check "${ls_packages[@]}"
  fi
fi

echo "building pictograph (release)" >&2
(cd "$repo" && cargo build --release -q -p pictograph-cli)
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
[[ "$target_dir" = /* ]] || target_dir="$repo/$target_dir"
bin="$target_dir/release/pictograph"

# Scratch space: under cargo's target directory unless BENCH_DIR says.
mkdir -p "${BENCH_DIR:-$target_dir/bench}"
work="$(mktemp -d "${BENCH_DIR:-$target_dir/bench}/run.XXXXXX")"
server_pid=""
ls_pid=""
cleanup() {
  if [[ -n "$ls_pid" ]]; then kill "$ls_pid" 2>/dev/null || true; wait "$ls_pid" 2>/dev/null || true; fi
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [[ "$keep" == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "generating $files images" >&2
"$python" "$here/gen_images.py" "$work/src" --files "$files" ${kb:+--kb "$kb"} >&2
bytes=$(du -sb "$work/src" | cut -f1)

# ── the server: a fresh data directory for every upload measured ──
# The server stores bytes by content, so each upload needs an empty store, and a fresh
# directory gives one without deleting anything (see `settle` below for why deleting matters).
unset PICTOGRAPH_CONFIG_DIR

# ── nothing is deleted while a run is timed ──
# On ext4 without a journal, creating a file skips over every inode of its block group freed
# in the last minutes, checking each one's deletion time: right after a few thousand files
# are deleted, each new file costs a scan of them, and that scan, not the tool timed, then
# dominates a run that writes thousands of files. So each run's outputs go to a trash
# directory (a rename) and are deleted between runs; then, as root, the page cache is
# dropped (it holds those inode blocks; recently freed inodes whose block is not cached are
# not scanned) and the source folder is read back in, so every run starts warm and clean.
# Without root the deletions stay cached and the times of later runs include the scans.
trash() { mkdir -p "$work/trash"; mv "$@" "$work/trash/"; }
settle() {
  rm -rf "$work/trash"
  sync
  if [[ -w /proc/sys/vm/drop_caches ]]; then
    echo 1 >/proc/sys/vm/drop_caches
    find "$work/src" -type f -exec cat {} + >/dev/null
  elif [[ -z "${settle_warned:-}" ]]; then
    settle_warned=1
    echo "note: not root, so the inode blocks of deleted outputs stay cached; on ext4 without a journal the runs after the first then include scans of the freed inodes" >&2
  fi
}

# ── Label Studio: fresh data directory, 127.0.0.1 only, nothing sent out ──
# LATEST_VERSION_CHECK=false: skips the check for a newer release made when its modules load
# (core/utils/common.py); COLLECT_ANALYTICS=false: no usage events (core/settings/base.py).
# Its user, password and API token are made by `start` itself (--username/--password/
# --user-token); --enable-legacy-api-token lets that token be sent as `Authorization: Token`.
# It serves with Django's development server, which is what `label-studio start` runs.
if [[ "$ls_on" == 1 ]]; then
  mkdir -p "$work/ls-data" "$work/ls-tmp"
  ls_port="$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  ls_token="bench$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
  echo "starting Label Studio $ls_version (migrations take a minute or two)" >&2
  env LATEST_VERSION_CHECK=false COLLECT_ANALYTICS=false \
    LABEL_STUDIO_BASE_DATA_DIR="$work/ls-data" TMPDIR="$work/ls-tmp" \
    SECRET_KEY="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" \
    "$ls_bin/label-studio" start --no-browser --internal-host 127.0.0.1 --port "$ls_port" \
      --data-dir "$work/ls-data" --username bench@localhost --password "$ls_token" \
      --user-token "$ls_token" --enable-legacy-api-token \
      </dev/null >"$work/ls.out" 2>"$work/ls.err" &
  ls_pid=$!
  ls_url=""
  for _ in $(seq 1 600); do
    kill -0 "$ls_pid" 2>/dev/null || break
    # `start` moves to the next port if the one asked for was taken meanwhile: read it back.
    ls_url="$(sed -n 's|^Starting development server at \(http://127\.0\.0\.1:[0-9]*\)/$|\1|p' "$work/ls.out" 2>/dev/null || true)"
    [[ -n "$ls_url" ]] && curl -sf "$ls_url/health" >/dev/null && break
    ls_url=""
    sleep 1
  done
  [[ -n "$ls_url" ]] || { echo "error: Label Studio did not start:" >&2; tail -n 30 "$work/ls.out" "$work/ls.err" >&2; exit 1; }
  export LS_URL="$ls_url" LS_TOKEN="$ls_token"
  ls_classes="$(cd "$work/src" && ls -d */ | tr -d / | paste -sd,)"
  echo "Label Studio $ls_version at $ls_url" >&2
fi

# Runs a command, checks it succeeded, and appends its wall time in seconds to $1. What
# earlier commands left in memory is written out first (untimed): with gigabytes of it
# pending, the kernel makes whichever command writes next wait for the disk.
timed() {
  local out="$1"; shift
  local t0 t1
  sync
  t0=$(date +%s%N)
  if ! "$@" >"$work/last.out" 2>"$work/last.err"; then
    echo "error: failed: $*" >&2; cat "$work/last.out" "$work/last.err" >&2; exit 1
  fi
  t1=$(date +%s%N)
  echo "$(( (t1 - t0) / 1000000 ))" | awk '{printf "%.3f\n", $1/1000}' >>"$out"
  echo "  ${out##*/}: $(tail -n 1 "$out") s" >&2
}

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
page_before="$(fresh_page_cost)"
wflag=()
[[ -n "$workers" ]] && wflag=(--workers "$workers")
touch "$work/up_py" "$work/dl_py" "$work/up_ls" "$work/dl_ls" "$work/dl_cps" "$work/dl_dcp" "$work/dl_dcph"
for i in $(seq 1 "$runs"); do
  settle
  echo "run $i/$runs: ours" >&2
  start_server "$bin" "$work/data-ours-$i"
  echo "server at $PICTOGRAPH_BASE_URL" >&2
  timed "$work/up_ours" "$bin" upload "$work/src" --dataset "ours-$i" --json "${wflag[@]}"
  "$python" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["uploaded"]==int(sys.argv[2]) and d["failed"]==0, d' \
    "$work/last.out" "$files"
  timed "$work/dl_ours" "$bin" download "ours-$i" "$work/dl-ours-$i" --json "${wflag[@]}"
  "$python" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["images_downloaded"]==int(sys.argv[2]) and d["failed"]==0, d' \
    "$work/last.out" "$files"
  trash "$work/dl-ours-$i"

  if (( i <= py_runs )); then
    echo "run $i/$runs: python" >&2
    timed "$work/dl_py" "$python" "$here/py_client.py" download "ours-$i" "$work/dl-py-$i"
    trash "$work/dl-py-$i"
    stop_server
    start_server "$bin" "$work/data-py-$i"
    timed "$work/up_py" "$python" "$here/py_client.py" upload "$work/src" "py-$i"
  fi
  stop_server

  echo "run $i/$runs: cp -r" >&2
  timed "$work/up_cp" cp -r "$work/src" "$work/cp-$i"
  timed "$work/dl_cp" cp -r "$work/src" "$work/cpdl-$i"
  # The server answers an upload only once its bytes are on disk; `cp -r` then `sync` is the
  # floor for that.
  timed "$work/up_cps" bash -c 'cp -r "$1" "$2" && sync' _ "$work/src" "$work/cps-$i"
  timed "$work/up_dcp" "$python" "$here/durable_copy.py" "$work/src" "$work/dcp-$i" "${workers:-16}"
  timed "$work/up_dcph" "$python" "$here/durable_copy.py" --sha256 "$work/src" "$work/dcph-$i" "${workers:-16}"
  trash "$work/cp-$i" "$work/cpdl-$i" "$work/cps-$i" "$work/dcp-$i" "$work/dcph-$i" "$work"/data-*

  if (( i <= ls_runs )); then
    echo "run $i/$runs: label studio" >&2
    # Making the (empty) project is part of the timed import, as `upload` creates its dataset.
    timed "$work/up_ls" bash -c '
      set -euo pipefail
      project="$("$1/python" "$2/ls_client.py" project "bench-$3" "$4")"
      echo "$project" >"$5/ls-project"
      "$1/python" "$2/ls_client.py" import "$project" "$5/src" --batch "$6" --parallel "$7"
    ' _ "$ls_bin" "$here" "$i" "$ls_classes" "$work" "$ls_batch" "$ls_parallel"
    project="$(cat "$work/ls-project")"
    timed "$work/dl_ls" "$ls_bin/python" "$here/ls_client.py" export "$project" "$work/dl-ls-$i"
    trash "$work/dl-ls-$i"
    # The export leaves its zip in the server's TMPDIR; deleting a project keeps the uploaded
    # files, so both go by hand (nothing refers to them once the project is gone).
    curl -sf -X DELETE -H "Authorization: Token $ls_token" "$ls_url/api/projects/$project/" >/dev/null
    rm -rf "$work/ls-tmp/"* "$work/ls-data/media/upload/$project"
  fi
done

"$python" - "$work" "$files" "$bytes" "$runs" "$py_runs" "$ls_runs" "$(nproc)" "${ls_version:-}" "$ls_batch" "$ls_parallel" \
  "$load_before" "$(cut -d' ' -f1-3 /proc/loadavg)" "$page_before" "$(fresh_page_cost)" <<'EOF'
import statistics, sys
work, files, nbytes, runs, py_runs, ls_runs, cpus, ls_version, ls_batch, ls_parallel, load0, load1, page0, page1 = sys.argv[1:]
files, nbytes, ls_runs = int(files), int(nbytes), int(ls_runs)

def med(n):
    xs = [float(x) for x in open(f"{work}/{n}").read().split()]
    return statistics.median(xs) if xs else None

cols = [("ours", "ours"), ("python", "py"), ("cp -r", "cp"), ("cp -r; sync", "cps"), ("durable cp", "dcp"), ("durable+sha", "dcph")] + ([("label studio", "ls")] if ls_runs else [])
print(f"\n{files} files, {nbytes / 1e6:.0f} MB, {cpus} CPUs, warm cache; medians of runs:"
      f" ours {runs}, cp -r {runs}, python {py_runs}" + (f", label studio {ls_runs}" if ls_runs else ""))
print(f"load average (1, 5, 15 min) before the runs {load0}, after {load1}: other work on the machine skews the times")
print(f"first touch of fresh memory: {page0} µs per 4 KB page before the runs, {page1} after"
      " (a fraction of 1 where the memory is not backed lazily by a virtual machine's host;"
      " more, and every tool pays it for each page of page cache it fills)")
if ls_runs:
    print(f"label studio {ls_version}: import in requests of {ls_batch} files, {ls_parallel} at once;"
          " download = its YOLO_WITH_IMAGES export, unpacked")
ratios = ["python/ours"] + (["ls/ours"] if ls_runs else []) + ["ours/cp", "ours/cp;sync", "ours/durable", "ours/dur+sha"]
print(f"{'':10}" + "".join(f"{c:>14}" for c, _ in cols) + "".join(f"{r:>13}" for r in ratios) + f"{'ours MB/s':>11}")
for op in ("upload", "download"):
    p = "up" if op == "upload" else "dl"
    t = {k: med(f"{p}_{k}") for _, k in cols}
    o = t["ours"]
    cells = "".join(f"{t[k]:13.2f}s" if t[k] is not None else f"{'-':>14}" for _, k in cols)
    div = lambda a, b: a / b if a is not None and b is not None else None
    r = [div(t["py"], o)] + ([div(t["ls"], o)] if ls_runs else []) + [div(o, t["cp"]), div(o, t["cps"]), div(o, t["dcp"]), div(o, t["dcph"])]
    ratio = lambda x: f"{x:12.1f}x" if x is not None else f"{'-':>13}"
    print(f"{op:10}{cells}" + "".join(ratio(x) for x in r) + f"{nbytes / 1e6 / o:11.0f}")
EOF
