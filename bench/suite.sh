#!/usr/bin/env bash
# The performance suite in one run (not a test: it asserts nothing beyond every step
# succeeding): the scale benchmark on SQLite and on PostgreSQL, then folder upload and dataset
# download against the official Python client, `cp -r` and Label Studio, then the CLI's
# memory downloading and uploading a million images.
#
# Usage: bench/suite.sh [--quick]
#   full     bench/scale.sh with datasets of 10,000, 100,000 and 1,000,000 images, 3 rounds of
#            the 100,000-id batches (cost growth, listing at both ends, dataset reads, batches
#            against per-image calls, download listing, CLI downloads with peak memory,
#            CLI uploads of 10,000 and 100,000 files, metadata throughput against a bare
#            axum handler, server RSS); then bench/upload_download.sh at 10,000 images
#            (about 2 GB), 3 runs of ours and of `cp -r`, 2 of the Python client and of
#            Label Studio; then, on SQLite, a full CLI download of the 1,100,000 images of
#            the million-image dataset (after its batch copy) and a CLI upload of a folder
#            of 1,000,000 small JPEGs, with the CLI's peak memory. The first two parts took
#            26 minutes on 2 cores before the CLI uploads joined the first (they add about
#            2 minutes per backend); the last takes about 20 (plus Label Studio's
#            installation the first time); 12 GB of scratch space.
#   --quick  every part at a small size (datasets of 10,000 and 100,000, 1 batch round,
#            2,000 files, 1 run each, no Label Studio, the last step at 100,000): checks
#            the suite runs, in minutes.
# BENCH_DIR=DIR puts the scratch directories there (default: target/bench). Everything
# printed is also saved to BENCH_DIR/suite-DATE.txt.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
quick=0
case "${1:-}" in
  "") ;;
  --quick) quick=1 ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
  *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac

if [[ "$quick" == 1 ]]; then
  scale=(--sizes 10000,100000 --batch 10000 --batch-rounds 1 --load-secs 3 --download-max 10000
    --upload-max 10000)
  transfer=(--files 2000 --runs 1)
  million=(--sizes 100000 --batch 10000)
else
  scale=(--sizes 10000,100000,1000000 --batch-rounds 3)
  transfer=(--files 10000 --kb 200 --runs 3 --py-runs 2 --label-studio --ls-runs 2)
  million=(--sizes 1000000)
fi
million+=(--batch-rounds 1 --load-secs 0 --delete-largest false --download-max 1000000
  --upload-max 1000000)

bench_dir="${BENCH_DIR:-$repo/target/bench}"
mkdir -p "$bench_dir"
log="$bench_dir/suite-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  echo "pictograph bench suite: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)," \
    "$(nproc) cores, $(date -u +%Y-%m-%dT%H:%M:%SZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "══ scale: SQLite and PostgreSQL ══"
  "$here/scale.sh" -- "${scale[@]}"
  echo "══ upload and download ══"
  "$here/upload_download.sh" "${transfer[@]}"
  echo "══ the CLI's memory at a million images (SQLite) ══"
  "$here/scale.sh" --sqlite-only -- "${million[@]}"
} 2>&1 | tee "$log"
echo "saved to $log"
