#!/usr/bin/env bash
# Check exports with the real readers of each format (pycocotools, Ultralytics, supervision, lxml).
# Usage: tests/formats/run.sh [pytest args...]   (run `cargo build` first)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../lib/python-suite.sh"
ensure_venv "$here/.venv" "$here/requirements.txt"

cd "$repo"
exec "$here/.venv/bin/python" -m pytest -q tests/formats "$@"
