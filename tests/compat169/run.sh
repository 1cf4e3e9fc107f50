#!/usr/bin/env bash
# Run the pictograph-1.69.146 compatibility suite against the server binary.
# Usage: tests/compat169/run.sh [pytest args...]   (run `cargo build` first)
#
# Two venvs: tests/compat169/.venv (pictograph 1.69.146, runs pytest) and
# tests/compat169/.venv-legacy (pictograph 1.6.3 from ../compat/requirements.txt, driven in
# subprocesses by the cross-version tests).
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

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "error: $python is older than 3.10 (pictograph needs >= 3.10); set PYTHON=python3.x" >&2
  exit 2
fi

# ensure_venv DIR REQUIREMENTS
ensure_venv() {
  local venv="$1" req="$2"
  local stamp="$venv/.compat-requirements"
  if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating venv at ${venv#"$repo"/}" >&2
    "$python" -m venv "$venv"
  fi
  if [[ ! -f "$stamp" ]] || ! cmp -s "$req" "$stamp"; then
    echo "installing ${req#"$repo"/} into ${venv#"$repo"/}" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$stamp"
  fi
}

ensure_venv "$here/.venv" "$here/requirements.txt"
ensure_venv "$here/.venv-legacy" "$repo/tests/compat/requirements.txt"
export PICTOGRAPH_LEGACY_PYTHON="$here/.venv-legacy/bin/python"

cd "$repo"
exec "$here/.venv/bin/python" -m pytest -q tests/compat169 "$@"
