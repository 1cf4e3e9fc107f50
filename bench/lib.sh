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

# Prints the Cargo target directory of the workspace at $1 (CARGO_TARGET_DIR and config
# included).
target_dir() {
  (cd "$1" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
}
