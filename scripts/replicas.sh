#!/usr/bin/env bash
# kiln in its production shape on one machine: a 3-node Garage cluster (replication factor 3), PostgreSQL,
# N kiln-server replicas (default 2) and HAProxy in front of both the replicas (round robin, /readyz health
# checks) and Garage's S3 API (so a stopped Garage node is routed around).
#
#   scripts/replicas.sh start [REPLICAS]   # prints BALANCER_URL=... BALANCER_TOKEN=... and the state folder
#   scripts/replicas.sh stop
#   scripts/replicas.sh kill-replica N     # SIGKILL replica N (1-based); `start-replica N` starts it again
#   scripts/replicas.sh stop-garage N      # stop Garage node N; `start-garage N` starts it again
#
# Ports: balancer 18080, replicas 18081.., S3 through the balancer 18900, Garage nodes 3910/3920/3930
# (S3) and 3911/3921/3931 (RPC), HAProxy's stats on 18999. kiln binaries: KILN_BIN (default
# target/debug). PostgreSQL comes from scripts/pg-test-start.sh (database kiln_replicas, made afresh on
# start). Installs haproxy with apt when missing. The replica test (tests/tests/replicas.rs) drives it.
set -euo pipefail
cd "$(dirname "$0")/.."
state="${KILN_REPLICAS_DIR:-/tmp/kiln-replicas}"
bin="${KILN_BIN:-target/debug}"
garage_bin="$(command -v garage || echo "$HOME/.cargo/bin/garage")"
key_id=GK0123456789abcdef01234568
secret=1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
bucket=kiln-replicas
admin_token="replicas-admin-token-0123456789abcdef"

node_config() { echo "$state/garage-$1/garage.toml"; }
garage_node() { local n="$1"; shift; "$garage_bin" -c "$(node_config "$n")" "$@"; }

start_garage_node() {
  local n="$1" dir="$state/garage-$1"
  [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null && return 0
  nohup "$garage_bin" -c "$(node_config "$n")" server >>"$dir/server.log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 100); do garage_node "$n" status >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "garage node $n did not start:" >&2; tail -20 "$dir/server.log" >&2; return 1
}

start_garage() {
  local rpc_secret
  rpc_secret="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  for n in 1 2 3; do
    local dir="$state/garage-$n"
    mkdir -p "$dir/meta" "$dir/data"
    cat >"$(node_config "$n")" <<TOML
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 3
rpc_bind_addr = "127.0.0.1:39${n}1"
rpc_public_addr = "127.0.0.1:39${n}1"
rpc_secret = "$rpc_secret"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:39${n}0"
root_domain = ".s3.garage.localhost"
TOML
    start_garage_node "$n"
  done
  for n in 2 3; do
    garage_node 1 node connect "$(garage_node "$n" node id -q)" >/dev/null
  done
  for n in 1 2 3; do
    garage_node 1 layout assign -z "dc$n" -c 1G "$(garage_node "$n" node id -q | cut -d@ -f1)" >/dev/null
  done
  garage_node 1 layout apply --version 1 >/dev/null
  garage_node 1 key import --yes -n replicas "$key_id" "$secret" >/dev/null
  garage_node 1 bucket create "$bucket" >/dev/null
  garage_node 1 bucket allow --read --write --owner "$bucket" --key "$key_id" >/dev/null
}

write_haproxy_config() {
  local replicas="$1"
  {
    cat <<CFG
global
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 300s
  timeout server 300s
  option redispatch
  retries 2
frontend kiln
  bind 127.0.0.1:18080
  default_backend kiln_replicas
backend kiln_replicas
  balance roundrobin
  option httpchk GET /readyz
  default-server inter 500ms fall 2 rise 2
CFG
    for n in $(seq "$replicas"); do echo "  server kiln$n 127.0.0.1:$((18080 + n)) check"; done
    cat <<CFG
frontend s3
  bind 127.0.0.1:18900
  default_backend garage
backend garage
  balance roundrobin
  option httpchk
  http-check send meth GET uri / ver HTTP/1.1 hdr Host garage
  http-check expect rstatus [2-4][0-9][0-9]
  default-server inter 500ms fall 2 rise 2
  server garage1 127.0.0.1:3910 check
  server garage2 127.0.0.1:3920 check
  server garage3 127.0.0.1:3930 check
listen stats
  bind 127.0.0.1:18999
  stats enable
  stats uri /
CFG
  } >"$state/haproxy.cfg"
}

start_replica() {
  local n="$1" dir="$state/kiln-$1"
  mkdir -p "$dir"
  # Every replica shares the database, the bucket and the manifest signing keys.
  env -i PATH="$PATH" HOME="$HOME" RUST_LOG="${RUST_LOG:-info}" \
    KILN_LISTEN="127.0.0.1:$((18080 + n))" \
    KILN_DATA_DIR="$dir" \
    KILN_DATABASE_URL="$(cat "$state/database_url")" \
    KILN_STORAGE_URL="s3://$bucket/kiln" \
    KILN_S3_ENDPOINT="http://127.0.0.1:18900" KILN_S3_REGION=garage \
    KILN_S3_ACCESS_KEY_ID="$key_id" KILN_S3_SECRET_ACCESS_KEY="$secret" \
    KILN_MANIFEST_KEYS_DIR="$state/manifest-keys" \
    KILN_PUBLIC_URL="http://127.0.0.1:18080" \
    KILN_BOOTSTRAP_TOKEN="$admin_token" \
    KILN_EMBEDDED_RUNNER=false \
    KILN_WEBHOOK_ALLOW_PRIVATE_TARGETS=true \
    KILN_METRICS_LISTEN="127.0.0.1:$((18180 + n))" \
    ${KILN_REPLICA_ENV:-} \
    "$bin/kiln-server" >>"$dir/server.log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 300); do
    curl -fs "http://127.0.0.1:$((18080 + n))/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "replica $n did not start:" >&2; tail -30 "$dir/server.log" >&2; return 1
}

stop_all() {
  [ -d "$state" ] || return 0
  for pidfile in "$state"/*/pid "$state"/haproxy.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  sleep 0.5
  for pidfile in "$state"/*/pid "$state"/haproxy.pid; do
    [ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
  done
  rm -rf "$state"
}

case "${1:-}" in
  start)
    replicas="${2:-2}"
    command -v haproxy >/dev/null || {
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq && apt-get install -y -qq --no-install-recommends haproxy >/dev/null
    }
    "$garage_bin" --version >/dev/null 2>&1 || { echo "garage is missing: scripts/garage-test-start.sh installs it" >&2; exit 1; }
    stop_all
    mkdir -p "$state"
    pg="$(scripts/pg-test-start.sh | tail -n 1)"; pg="${pg#DATABASE_URL=}"
    psql "$pg" -qc "DROP DATABASE IF EXISTS kiln_replicas WITH (FORCE)" -c "CREATE DATABASE kiln_replicas"
    echo "${pg%/*}/kiln_replicas" >"$state/database_url"
    start_garage
    write_haproxy_config "$replicas"
    haproxy -D -f "$state/haproxy.cfg" -p "$state/haproxy.pid"
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:18900/" && break; sleep 0.1; done
    # The first replica makes the schema and the administrator; the rest start beside it.
    start_replica 1
    for n in $(seq 2 "$replicas"); do start_replica "$n"; done
    for _ in $(seq 100); do curl -fs http://127.0.0.1:18080/readyz >/dev/null 2>&1 && break; sleep 0.1; done
    echo "$state"
    echo "BALANCER_URL=http://127.0.0.1:18080 BALANCER_TOKEN=$admin_token"
    ;;
  stop) stop_all ;;
  kill-replica) kill -9 "$(cat "$state/kiln-$2/pid")" ;;
  start-replica) start_replica "$2" ;;
  stop-garage) kill "$(cat "$state/garage-$2/pid")"; while kill -0 "$(cat "$state/garage-$2/pid")" 2>/dev/null; do sleep 0.1; done ;;
  start-garage)
    rm -f "$state/garage-$2/pid"
    start_garage_node "$2"
    # Back in the cluster at once (the others would retry it later), then it resyncs what it missed.
    for n in 1 2 3; do
      [ "$n" = "$2" ] || garage_node "$2" node connect "$(garage_node "$n" node id -q)" >/dev/null
    done
    ;;
  *) echo "usage: scripts/replicas.sh start [REPLICAS] | stop | kill-replica N | start-replica N | stop-garage N | start-garage N" >&2; exit 2 ;;
esac
