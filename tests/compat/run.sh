#!/usr/bin/env bash
# Run the pictograph-1.6.3 compatibility suite against the server binary.
# Usage: tests/compat/run.sh [pytest args...]   (run `cargo build` first)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../lib/python-suite.sh"
ensure_venv "$here/.venv" "$here/requirements.txt"

cd "$repo"
exec "$here/.venv/bin/python" -m pytest -q tests/compat "$@"
