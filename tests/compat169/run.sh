#!/usr/bin/env bash
# Run the pictograph-1.69.146 compatibility suite against the server binary.
# Usage: tests/compat169/run.sh [pytest args...]   (run `cargo build` first)
#
# Two venvs: tests/compat169/.venv (pictograph 1.69.146, runs pytest) and
# tests/compat169/.venv-legacy (pictograph 1.6.3 from ../compat/requirements.txt, driven in
# subprocesses by the cross-version tests).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../lib/python-suite.sh"
ensure_venv "$here/.venv" "$here/requirements.txt"
ensure_venv "$here/.venv-legacy" "$repo/tests/compat/requirements.txt"
export PICTOGRAPH_LEGACY_PYTHON="$here/.venv-legacy/bin/python"

cd "$repo"
exec "$here/.venv/bin/python" -m pytest -q tests/compat169 "$@"
