#!/usr/bin/env bash
# Check exports with the real readers of each format (pycocotools, supervision, lxml).
# Usage: tests/formats/run.sh [pytest args...]   (run `cargo build` first)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

bin="${PICTOGRAPH_BIN:-$repo/target/debug/pictograph}"
case "$bin" in
  /*) ;;
  *) bin="$PWD/$bin" ;;
esac
if [[ ! -f "$bin" || ! -x "$bin" ]]; then
  echo "error: server binary not found or not executable: $bin" >&2
  echo "       build it first with 'cargo build', or set PICTOGRAPH_BIN to its path." >&2
  exit 2
fi
export PICTOGRAPH_BIN="$bin"

venv="$here/.venv"
python="${PYTHON:-python3}"
if [[ ! -x "$venv/bin/python" ]]; then
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "error: $python is older than 3.10 (the readers need >= 3.10); set PYTHON=python3.x" >&2
    exit 2
  fi
  echo "creating venv at tests/formats/.venv" >&2
  "$python" -m venv "$venv"
fi

req="$here/requirements.txt"
stamp="$venv/.formats-requirements"
if [[ ! -f "$stamp" ]] || ! cmp -s "$req" "$stamp"; then
  echo "installing tests/formats/requirements.txt" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
fi

cd "$repo"
exec "$venv/bin/python" -m pytest -q tests/formats "$@"
