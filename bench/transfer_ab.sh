#!/usr/bin/env bash
# Folder upload and dataset download of two builds side by side (not a test).
#
# Usage: bench/transfer_ab.sh OLD_BINARY NEW_BINARY [--rounds N] [--files N] [--kb KB]
#                             [--workers W] [--postgres ADMIN_URL] [--postgres-for old|new|both]
#                             [--s3] [--s3-options-for old|new OPTIONS]
#
# Generates one folder of N images (default 2000, as bench/upload_download.sh does; --kb sets
# their average size, see bench/gen_images.py), then,
# round after round, runs each build in turn: a server on a fresh data directory, the build's
# own CLI uploading the folder, then downloading the dataset into a fresh directory. The order
# of the two builds alternates between rounds, so drift of the machine's speed during the run
# falls on both. Prints every time, then per step both builds' medians and their ratio
# (old / new, above 1 when the new build is faster), with the CPU time of the server and of
# the CLI and the CLI's peak memory (for memory, above 1 when the new build holds less). Outputs are moved aside while timing and deleted between rounds (see `settle` in
# bench/upload_download.sh for why).
# With --postgres, each server keeps its metadata in a fresh database of the PostgreSQL server
# at ADMIN_URL (e.g. postgres://postgres@127.0.0.1:5433), dropped after its round;
# --postgres-for new (or old) gives PostgreSQL to that side only, the other keeping SQLite:
# with the same binary twice, this compares the two metadata stores.
# With --s3, the bytes go to an S3-compatible server (tools/s3-server, started by scripts/test-s3 on
# 127.0.0.1:${PICTOGRAPH_TEST_S3_PORT:-8099}, stopped at the end), each round under its own
# prefix of one bucket. --s3-options-for new 'uploads=server' adds options to that build's
# s3:// URL (after its endpoint), e.g. to compare two ways of one build.
# BENCH_DIR=DIR puts the scratch directory there (default: target/bench); it needs about
# 2 GB per round for the default size.
set -euo pipefail
# A failure inside "$(…)" (a function run for its output) stops the script too.
shopt -s inherit_errexit

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

[[ $# -ge 2 ]] || { sed -n '2,25p' "$0"; exit 2; }
old="$(realpath "$1")" new="$(realpath "$2")"
shift 2
rounds=5 files=2000 workers="" kb="" postgres="" postgres_for=both s3="" s3_options_old="" s3_options_new=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --files) files="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --kb) kb="$2"; shift 2 ;;
    --postgres) postgres="${2%/}"; shift 2 ;;
    --postgres-for) postgres_for="$2"; shift 2 ;;
    --s3) s3=1; shift ;;
    --s3-options-for)
      case "$2" in
        old) s3_options_old="&$3" ;;
        new) s3_options_new="&$3" ;;
        *) echo "--s3-options-for takes old or new, then the options" >&2; exit 2 ;;
      esac
      shift 3 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$postgres_for" =~ ^(old|new|both)$ ]] || { echo "--postgres-for takes old, new or both" >&2; exit 2; }
python="$(pillow_python)" || exit 2

work="${BENCH_DIR:-$repo/target/bench}/transfer-ab"
rm -rf "$work"
mkdir -p "$work/trash"
echo "generating $files images" >&2
kbflag=()
[[ -n "$kb" ]] && kbflag=(--kb "$kb")
"$python" "$here/gen_images.py" "$work/src" --files "$files" "${kbflag[@]}" >&2

s3_endpoint=""
if [[ -n "$s3" ]]; then
  read -r s3_endpoint s3_pid < <(PICTOGRAPH_TEST_S3_PORT="${PICTOGRAPH_TEST_S3_PORT:-8099}" \
    PICTOGRAPH_TEST_S3_BUCKET=bench "$repo/scripts/test-s3")
  # The server's directory is the last word of its command line.
  s3_root="$(tr '\0' '\n' <"/proc/$s3_pid/cmdline" | tail -1)"
  trap 'kill "$s3_pid" 2>/dev/null || true; rm -rf "$s3_root" "$s3_root.log"' EXIT
  export AWS_ACCESS_KEY_ID=AKIATEST AWS_SECRET_ACCESS_KEY=SECRETTEST AWS_REGION=us-east-1
fi

settle() {
  rm -rf "$work/trash"
  mkdir -p "$work/trash"
  sync
  if [[ -w /proc/sys/vm/drop_caches ]]; then
    echo 1 >/proc/sys/vm/drop_caches
    find "$work/src" -type f -exec cat {} + >/dev/null
  fi
}

# CPU seconds (user + system) a process has used so far.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f\n", ($14 + $15) / hz}' "/proc/$1/stat"; }

wflag=()
[[ -n "$workers" ]] && wflag=(--workers "$workers")
# Runs one build: prints, for the upload then the download, "seconds server_cpu cli_cpu
# cli_peak_mb".
one() {
  local bin="$1" tag="$2" pg=""
  local data="$work/data-$tag" dl="$work/dl-$tag" db="transfer_ab_${tag//-/_}" dbflag=()
  [[ -n "$postgres" && ( "$postgres_for" == both || "$tag" == "$postgres_for"-* ) ]] && pg="$postgres"
  if [[ -n "$pg" ]]; then
    fresh_database "$pg" "$db"
    dbflag=(--database-url "$pg/$db")
  fi
  local s3_options="$s3_options_old"
  [[ "$tag" == new-* ]] && s3_options="$s3_options_new"
  [[ -n "$s3_endpoint" ]] && dbflag+=(--blobs "s3://bench/$tag?endpoint=$s3_endpoint$s3_options")
  # A failed step ends this function's subshell; the server goes with it.
  server_pid=""
  trap '[[ -z "$server_pid" ]] || kill "$server_pid" 2>/dev/null || true' EXIT
  start_server "$bin" "$data" "${dbflag[@]}"
  local pid="$server_pid"
  local times=()
  for step in upload download; do
    local cmd
    if [[ "$step" == upload ]]; then
      cmd=("$bin" upload "$work/src" --dataset ab --json "${wflag[@]}")
    else
      cmd=("$bin" download ab "$dl" --json "${wflag[@]}")
    fi
    sync
    local s0 t0 t1 s1
    s0="$(cpu_of "$pid")"
    t0=$(date +%s%N)
    /usr/bin/time -f '%U %S %M' -o "$work/cli.time" "${cmd[@]}" >"$work/last.out" 2>"$work/last.err" ||
      { echo "error: $step failed:" >&2; cat "$work/last.out" "$work/last.err" >&2; kill "$pid"; exit 1; }
    t1=$(date +%s%N)
    s1="$(cpu_of "$pid")"
    "$python" -c 'import json,sys; d=json.load(open(sys.argv[1])); n=d.get("uploaded", d.get("images_downloaded")); assert n==int(sys.argv[2]) and d["failed"]==0, d' \
      "$work/last.out" "$files"
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}')")
    times+=("$(awk -v a="$s0" -v b="$s1" 'BEGIN{printf "%.2f", b-a}')")
    times+=("$(awk '{printf "%.2f", $1 + $2}' "$work/cli.time")")
    times+=("$(awk '{printf "%.1f", $3 / 1024}' "$work/cli.time")")
  done
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  [[ -n "$pg" ]] && psql_admin "$pg" "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  mv "$data" "$dl" "$work/trash/"
  if [[ -n "$s3_endpoint" && -d "$s3_root/bench/$tag" ]]; then mv "$s3_root/bench/$tag" "$work/trash/s3-$tag"; fi
  echo "${times[*]}"
}

: >"$work/results"
page_before="$(fresh_page_cost)"
for r in $(seq 1 "$rounds"); do
  order=(old new)
  (( r % 2 == 0 )) && order=(new old)
  for which in "${order[@]}"; do
    settle
    bin="$old"
    [[ "$which" == new ]] && bin="$new"
    line="$(one "$bin" "$which-$r")"
    echo "round $r $which: $line" >&2
    echo "$which $line" >>"$work/results"
  done
done
rm -rf "$work/trash"

"$python" - "$work/results" "$files" "$(du -sb "$work/src" | cut -f1)" "$page_before" "$(fresh_page_cost)" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
print(f"first touch of fresh memory: {sys.argv[4]} µs per 4 KB page before the rounds, {sys.argv[5]} after")
cols = ["upload s", "  server cpu", "  cli cpu", "  cli peak MB",
        "download s", "  server cpu", "  cli cpu", "  cli peak MB"]
by = {w: [[float(x) for x in r[1:]] for r in rows if r[0] == w] for w in ("old", "new")}
print(f"{sys.argv[2]} files, {int(sys.argv[3]) / 1e6:.0f} MB, {len(by['old'])} rounds; medians")
print(f"{'':14}{'old':>9}{'new':>9}{'old/new':>9}")
for i, name in enumerate(cols):
    o = statistics.median(r[i] for r in by["old"])
    n = statistics.median(r[i] for r in by["new"])
    print(f"{name:14}{o:9.2f}{n:9.2f}{o / n if n else float('nan'):9.2f}")
EOF
