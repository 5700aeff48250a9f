#!/usr/bin/env bash
# The mixed soak: CLIENTS (default 4) clients pushing small versions, pulling them back byte for byte,
# listing, showing and moving aliases for MINUTES (default 10), against a release kiln-server on the
# embedded default, or with --balancer against scripts/replicas.sh's fleet (started and stopped here).
# Every failed command is an error; the servers' resident memory is sampled every 10 s. Prints the
# operations, the errors and the memory curve. Not part of scripts/test.sh.
# Usage: scripts/soak.sh [MINUTES] [CLIENTS] [--balancer]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-10}"
clients="${2:-4}"
mode="${3:-embedded}"
cargo build --quiet --release -p kiln-server -p kiln-cli
if [ "$mode" = --balancer ]; then
  KILN_BIN=target/release KILN_REPLICA_ENV="KILN_RATE_LIMIT_PER_MINUTE=1000000" scripts/replicas.sh start >/dev/null
  trap 'scripts/replicas.sh stop' EXIT
  url=http://127.0.0.1:18080
  token=replicas-admin-token-0123456789abcdef
  pids="$(cat /tmp/kiln-replicas/kiln-*/pid | tr '\n' ' ')"
else
  source scripts/throwaway-server.sh
  start_throwaway_server target/release/kiln-server KILN_RATE_LIMIT_PER_MINUTE=1000000
  url="$KILN_SERVER" token="$KILN_TOKEN" pids="$server"
fi
python3 scripts/soak.py --url "$url" --token "$token" --minutes "$minutes" --clients "$clients" \
  --kiln target/release/kiln --pids $pids
