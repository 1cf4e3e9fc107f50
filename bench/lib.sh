# Functions the bench scripts share (sourced, not run).

# Prints the URL a `pictograph serve` started in the background announced in the file $1
# (its standard output), waiting up to 10 s for it; when none comes, shows the server's
# standard error (the file $2) and fails.
listening_url() {
  local out="$1" err="$2" url=""
  for _ in $(seq 1 100); do
    url="$(sed -n 's/^listening on //p' "$out" 2>/dev/null || true)"
    [[ -n "$url" ]] && break
    sleep 0.1
  done
  if [[ -z "$url" ]]; then
    echo "error: the server did not start:" >&2
    cat "$err" >&2
    return 1
  fi
  echo "$url"
}

# Prints a Python that has Pillow (which bench/gen_images.py needs): $PYTHON, else python3,
# else the venv in bench/.venv; fails when none has it.
pillow_python() {
  local bench p
  bench="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  for p in "${PYTHON:-python3}" "$bench/.venv/bin/python"; do
    if "$p" -c 'import PIL' 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "error: no Python with Pillow (set PYTHON)" >&2
  return 1
}

# Starts `$1 serve` in the background on a free port of 127.0.0.1, with the data directory
# $2 and the further flags $3…, its output in $work/serve.out and $work/serve.err ($work: the
# calling script's scratch directory). Sets server_pid (stopping it is the caller's, e.g. in
# a trap set beforehand) and exports PICTOGRAPH_BASE_URL and PICTOGRAPH_API_KEY, the owner
# key its first start announced. Fails when it does not start or announces no key.
start_server() {
  local bin="$1" data="$2" url key
  shift 2
  "$bin" serve --data-dir "$data" "$@" --listen 127.0.0.1:0 \
    >"$work/serve.out" 2>"$work/serve.err" &
  server_pid=$!
  url="$(listening_url "$work/serve.out" "$work/serve.err")"
  key="$(sed -n 's/^  \(pk_[A-Za-z0-9_]*\)$/\1/p' "$work/serve.out" | head -1)"
  [[ -n "$key" ]] || { echo "error: no key in the server's first-start output" >&2; return 1; }
  export PICTOGRAPH_BASE_URL="$url" PICTOGRAPH_API_KEY="$key"
}

# Stops the server `start_server` started (its pid in server_pid), if one runs, and waits
# for it to exit.
stop_server() {
  [[ -n "${server_pid:-}" ]] || return 0
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# Prints the Cargo target directory of the workspace at $1 (CARGO_TARGET_DIR and config
# included).
target_dir() {
  (cd "$1" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
}

# Prints what fresh memory costs on this machine right now: the time to touch 256 MB of
# newly mapped memory for the first time, in microseconds per 4 KB page. Every byte a tool
# writes into new page cache (a download, the server storing an upload, `cp -r`) takes such
# pages. It is a fraction of a microsecond where memory is not backed lazily; in a virtual
# machine whose host backs guest memory on first use, or takes freed pages back, it can be
# tens of microseconds and change within minutes, and then it, not the tool, sets the times.
# Print it beside figures.
fresh_page_cost() {
  python3 - <<'PY'
import mmap, time
size = 256 << 20
m = mmap.mmap(-1, size)
t = time.perf_counter()
for i in range(0, size, 4096):
    m[i] = 1
elapsed = time.perf_counter() - t
m.close()
print(f"{elapsed / (size // 4096) * 1e6:.1f}")
PY
}

# Runs the SQL statement $2 on the `postgres` database of the PostgreSQL server whose URL
# (without a database) is $1, quietly, failing on the first error.
psql_admin() { psql "$1/postgres" -v ON_ERROR_STOP=1 -qc "$2" >/dev/null; }

# Makes the database $2 of the PostgreSQL server whose admin URL is $1 empty: dropped (with
# any connections to it) when it exists, then created.
fresh_database() {
  psql_admin "$1" "DROP DATABASE IF EXISTS $2 WITH (FORCE)"
  psql_admin "$1" "CREATE DATABASE $2"
}
