#!/usr/bin/env bash
# Reads at fleet scale: thousands of deployment nodes polling an alias's manifest, CI fetching versions.
# wrk on `GET /api/v1/models/acme/m/versions/1` and `GET .../aliases/production/manifest` with a read-only
# API token (as a deployment node holds), at 8 and 64 connections, against a release kiln-server on the
# embedded default (SQLite + local files); with BALANCER_URL and BALANCER_TOKEN (an administrator's) set
# (scripts/replicas.sh prints both), the same through that load balancer too. Client and server share this machine's cores.
# Prints one table: req/s, p50, p99, non-2xx answers. Installs wrk with apt when missing. Not part of
# scripts/test.sh.
# Usage: scripts/bench-reads.sh [SECONDS_PER_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
command -v wrk >/dev/null || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends wrk >/dev/null
}
cargo build --quiet --release -p kiln-server -p kiln-cli
bin=target/release
source scripts/throwaway-server.sh
start_throwaway_server "$bin/kiln-server" KILN_EMBEDDED_RUNNER=false KILN_RATE_LIMIT_PER_MINUTE=100000000

# Pushes acme/m:1 to the server at $1 as admin $2, aliases it, prints a read-only token for acme.
seed() {
  local url="$1" admin="$2"
  echo "weights $(date +%s%N)" >"$work/w.bin"
  KILN_SERVER="$url" KILN_TOKEN="$admin" "$bin/kiln" push "$work/w.bin" acme/m:1 >/dev/null
  for _ in $(seq 200); do
    [ "$(KILN_SERVER="$url" KILN_TOKEN="$admin" "$bin/kiln" show acme/m:1 --json |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" = ready ] && break
    sleep 0.1
  done
  KILN_SERVER="$url" KILN_TOKEN="$admin" "$bin/kiln" alias set acme/m production 1 >/dev/null
  KILN_SERVER="$url" KILN_TOKEN="$admin" "$bin/kiln" token create "fleet-$RANDOM" --scope read:acme --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}

# One wrk run: "req/s p50 p99 non-2xx".
measure() {
  local url="$1" connections="$2" reader="$3"
  wrk -t2 -c"$connections" -d"${seconds}s" --latency -H "Authorization: Bearer $reader" "$url" |
    awk '/Requests\/sec/{rps=$2} $1=="50%"{p50=$2} $1=="99%"{p99=$2} /Non-2xx/{bad=$NF} END{printf "%.0f %s %s %s\n", rps, p50, p99, bad+0}'
}

printf '| where | request | connections | req/s | p50 | p99 | non-2xx |\n|---|---|---|---|---|---|---|\n'
targets=("embedded default|$KILN_SERVER|$KILN_TOKEN")
[ -n "${BALANCER_URL:-}" ] && targets+=("through the balancer|$BALANCER_URL|$BALANCER_TOKEN")
for target in "${targets[@]}"; do
  IFS='|' read -r where base admin <<<"$target"
  reader=$(seed "$base" "$admin")
  for request in "GET version|/api/v1/models/acme/m/versions/1" "GET alias manifest|/api/v1/models/acme/m/aliases/production/manifest"; do
    for connections in 8 64; do
      read -r rps p50 p99 bad < <(measure "$base${request#*|}" "$connections" "$reader")
      printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$where" "${request%%|*}" "$connections" "$rps" "$p50" "$p99" "$bad"
    done
  done
done
