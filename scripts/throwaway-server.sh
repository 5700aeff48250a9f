# Sourced by the scripts that check kiln against a real server (not run on its own). start_throwaway_server
# starts one on the embedded default in a fresh temporary folder, with a fresh administrator token, stopped
# and removed when the script exits, and exports KILN_SERVER and KILN_TOKEN for the CLI. It sets `work`
# (the folder; the server's log is $work/server.log), `server` (its pid), `port` and `token`.
# Usage: start_throwaway_server BINARY [SETTING=VALUE ...]; then `settle REF` waits for a version's pipeline.
start_throwaway_server() {
  local binary="$1"
  shift
  work=$(mktemp -d)
  port=$((20000 + RANDOM % 20000))
  token="throwaway-admin-token-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  # The server takes only the settings given here: the caller's KILN_ variables (a script's own knobs,
  # KILN_TEST_*) would be unknown settings to it, which it refuses. env execs the server, so $! is the
  # server's own pid.
  local inherited=()
  while IFS='=' read -r name _; do
    [[ "$name" == KILN_* ]] && inherited+=(-u "$name")
  done < <(env)
  env "${inherited[@]}" KILN_DATA_DIR="$work/data" KILN_LISTEN="127.0.0.1:$port" KILN_BOOTSTRAP_TOKEN="$token" "$@" \
    "$binary" >"$work/server.log" 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
  export KILN_SERVER="http://127.0.0.1:$port" KILN_TOKEN="$token"
  for _ in $(seq 300); do
    curl -fs "$KILN_SERVER/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  echo "kiln-server did not start; its log:"
  cat "$work/server.log"
  return 1
}

# Waits until a version's pipeline settled: refused at the scan, or ready with no step still to run.
settle() {
  for _ in $(seq 300); do
    state=$(target/debug/kiln show "$1" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
busy = any(j["state"] in ("queued", "running") for j in d["pipeline"] if j["kind"] != "benchmark")
print("failed" if d["status"] == "failed" else "settled" if d["status"] == "ready" and not busy else "busy")')
    [ "$state" = settled ] && return 0
    [ "$state" = failed ] && { echo "$1: the scan refused it"; exit 1; }
    sleep 0.2
  done
  echo "$1: the pipeline did not settle"; exit 1
}
