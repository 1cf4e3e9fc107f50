# Shared prelude of the Python suites' run.sh scripts (sourced, not run). Sets `repo`, checks
# and exports PICTOGRAPH_BIN (the server binary the suites start), checks that $PYTHON (or
# python3) is 3.10 or newer, and defines `ensure_venv DIR REQUIREMENTS`, which creates the
# venv once and reinstalls the requirements whenever the file changes.

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

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
  echo "error: $python is older than 3.10 (the suites need >= 3.10); set PYTHON=python3.x" >&2
  exit 2
fi

# ensure_venv DIR REQUIREMENTS
ensure_venv() {
  local venv="$1" req="$2"
  local stamp="$venv/.installed-requirements"
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
