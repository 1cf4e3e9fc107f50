#!/usr/bin/env bash
# Scale benchmark: datasets of 10,000, 100,000 and 1,000,000 images on one release server,
# on SQLite and on PostgreSQL, measured over HTTP on 127.0.0.1 (bench/scale/src/main.rs).
#
# Usage: bench/scale.sh [--sqlite-only | --postgres-only] [-- ARGS…]
#   ARGS go to the measuring tool (see `pictograph-scale --help`): --sizes, --batch,
#   --load-secs, --connections, --download-max, --upload-max, --upload-folders, --annotations
#   (boxes on every seeded image: a labelled dataset), …
# BENCH_DIR=DIR puts the scratch directories there (default: target/bench); the 1M-image
# runs need about 3 GB.
#
# Prints, per backend: the cost-growth table (get, first and last list pages, download-listing
# pages, 1,000-id moves at each size); one request each of move, status update, archive,
# restore and copy of 100,000 images of the 1M dataset against the same move done one image
# per request; a walk of the whole download listing; full CLI downloads, and CLI uploads of
# folders of small JPEGs as large as the datasets, with the CLI's and the server's peak RSS;
# GET /images/{id}/metadata under 64 connections (one id, then 100,000 ids) against a bare
# axum handler serving the same body; the server's RSS throughout.
# PostgreSQL runs in its own throwaway cluster with default (durable) settings, on
# 127.0.0.1:${PICTOGRAPH_BENCH_PG_PORT:-5434}. Not a test: nothing is asserted beyond every
# request succeeding and every count matching.
set -euo pipefail
# A failure inside "$(…)" (a function run for its output) stops the script too.
shopt -s inherit_errexit

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
backends=(sqlite postgres)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sqlite-only) backends=(sqlite); shift ;;
    --postgres-only) backends=(postgres); shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

echo "building pictograph and the scale tool (release)" >&2
(cd "$repo" && cargo build --release -q -p pictograph-cli -p pictograph-scale)
target="$(target_dir "$repo")"
bench_dir="${BENCH_DIR:-$repo/target/bench}"
mkdir -p "$bench_dir"

pg_url() {
  local port="${PICTOGRAPH_BENCH_PG_PORT:-5434}" cluster=pictograph-bench version
  if ! command -v pg_createcluster >/dev/null; then
    echo "error: PostgreSQL is not installed (scripts/test-postgres installs it)" >&2
    return 1
  fi
  version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
  if ! pg_lsclusters -h | awk '{print $2}' | grep -qx "$cluster"; then
    pg_createcluster "$version" "$cluster" -p "$port" -- --auth-local=trust --auth-host=trust >&2
  fi
  # Settings of a server sized for a million-image dataset (see README, "PostgreSQL"):
  # buffers that hold the images table and its indexes, compressed full-page images in the
  # WAL, and no checkpoint forced in the middle of a 100,000-image batch.
  local conf="/etc/postgresql/$version/$cluster/conf.d/pictograph-bench.conf"
  if [[ ! -f "$conf" ]]; then
    printf '%s\n' "shared_buffers = '1536MB'" "wal_compression = lz4" "max_wal_size = '4GB'" >"$conf"
    pg_ctlcluster "$version" "$cluster" stop >&2 2>/dev/null || true
  fi
  if ! pg_lsclusters -h | awk -v c="$cluster" '$2 == c {print $4}' | grep -qx online; then
    pg_ctlcluster "$version" "$cluster" start >&2
  fi
  for _ in $(seq 1 50); do
    if psql -h 127.0.0.1 -p "$port" -U postgres -Atc 'select 1' >/dev/null 2>&1; then
      psql -h 127.0.0.1 -p "$port" -U postgres -qc "DROP DATABASE IF EXISTS scale WITH (FORCE)" >/dev/null
      psql -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE scale" >/dev/null
      echo "postgres://postgres@127.0.0.1:$port/scale"
      return 0
    fi
    sleep 0.2
  done
  echo "error: PostgreSQL did not answer on 127.0.0.1:$port" >&2
  return 1
}

for backend in "${backends[@]}"; do
  args=(--bin "$target/release/pictograph" --work "$bench_dir/scale-$backend")
  if [[ "$backend" == postgres ]]; then
    args+=(--postgres "$(pg_url)")
  fi
  echo "── $backend ──"
  RUST_LOG=error "$target/release/pictograph-scale" "${args[@]}" "$@"
  rm -rf "$bench_dir/scale-$backend"
  echo
done
