#!/usr/bin/env bash
# Reads at fleet scale: thousands of deployment nodes polling an alias's manifest, CI fetching versions.
# wrk on `GET /api/v1/models/acme/m/versions/1` and `GET .../aliases/production/manifest` with a read-only
# API token (as a deployment node holds), at 8 and 64 connections, against a release kiln-server on the
# embedded default (SQLite + local files); with BALANCER_URL and BALANCER_TOKEN (an administrator's) set
# (scripts/replicas.sh prints both), the same through that load balancer too. The peer in the same run:
# MLflow's model registry (its tracking server as `mlflow server` starts it, on SQLite; MLflow
# $MLFLOW_VERSION from PyPI into target/bench-mlflow), the same wrk runs on its model-version and alias
# reads (no credential: MLflow's server has none by default). MLFLOW=0 leaves the peer out. Client and
# servers share this machine's cores. Prints one table: req/s, p50, p99, non-2xx answers. Installs wrk with
# apt when missing. Not part of scripts/test.sh.
# Usage: scripts/bench-reads.sh [SECONDS_PER_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
mlflow_version="${MLFLOW_VERSION:-3.17.2}"
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

# Starts MLflow's tracking server on SQLite, registers model m with version 1 and alias production.
start_mlflow() {
  local venv=target/bench-mlflow
  if ! "$venv/bin/mlflow" --version 2>/dev/null | grep -q "$mlflow_version"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "mlflow==$mlflow_version"
  fi
  mlflow_port=$((20000 + RANDOM % 20000))
  "$venv/bin/mlflow" server --backend-store-uri "sqlite:///$work/mlflow.db" \
    --default-artifact-root "$work/mlruns" --host 127.0.0.1 --port "$mlflow_port" >"$work/mlflow.log" 2>&1 &
  mlflow_pid=$!
  trap 'kill $server 2>/dev/null; pkill -P $mlflow_pid 2>/dev/null; kill $mlflow_pid 2>/dev/null; rm -rf "$work"' EXIT
  mlflow_url="http://127.0.0.1:$mlflow_port"
  for _ in $(seq 600); do curl -sf "$mlflow_url/health" >/dev/null && break; sleep 0.2; done
  local api="$mlflow_url/api/2.0/mlflow"
  # A version's source is where its files live; MLflow accepts a remote URI without a run.
  curl -sS --fail-with-body -X POST "$api/registered-models/create" -H 'content-type: application/json' \
    -d '{"name":"m"}' >/dev/null
  curl -sS --fail-with-body -X POST "$api/model-versions/create" -H 'content-type: application/json' \
    -d '{"name":"m","source":"s3://models/m/1"}' >/dev/null
  curl -sS --fail-with-body -X POST "$api/registered-models/alias" -H 'content-type: application/json' \
    -d '{"name":"m","alias":"production","version":"1"}' >/dev/null
}

# One wrk run: "req/s p50 p99 non-2xx".
measure() {
  local url="$1" connections="$2" reader="$3"
  local auth=()
  [ -n "$reader" ] && auth=(-H "Authorization: Bearer $reader")
  wrk -t2 -c"$connections" -d"${seconds}s" --latency "${auth[@]}" "$url" |
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
if [ "${MLFLOW:-1}" != 0 ]; then
  start_mlflow
  for request in "GET version|/api/2.0/mlflow/model-versions/get?name=m&version=1" "GET alias|/api/2.0/mlflow/registered-models/alias?name=m&alias=production"; do
    curl -sf "$mlflow_url${request#*|}" >/dev/null || { echo "MLflow does not answer ${request#*|}" >&2; exit 1; }
    for connections in 8 64; do
      read -r rps p50 p99 bad < <(measure "$mlflow_url${request#*|}" "$connections" "")
      printf '| MLflow %s | %s | %s | %s | %s | %s | %s |\n' "$mlflow_version" "${request%%|*}" "$connections" "$rps" "$p50" "$p99" "$bad"
    done
  done
fi
