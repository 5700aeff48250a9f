#!/usr/bin/env bash
# Single-node Garage on loopback for tests. Idempotent. Prints env for the S3 client.
# Installs garage with `cargo install garage --locked` when it is missing (v2.5.0: 8-19 min on 2 cores).
set -euo pipefail
GARAGE_BIN="${GARAGE_BIN:-$(command -v garage || echo "$HOME/.cargo/bin/garage")}"
if ! "$GARAGE_BIN" --version >/dev/null 2>&1; then
  echo "garage not found: cargo install garage --locked --version 2.5.0 (takes several minutes)" >&2
  cargo install garage --locked --version 2.5.0 >&2
  GARAGE_BIN="$HOME/.cargo/bin/garage"
fi
DIR="${GARAGE_DIR:-/tmp/kiln-garage-test}"
S3_PORT="${GARAGE_S3_PORT:-3900}"; RPC_PORT="${GARAGE_RPC_PORT:-3901}"; ADMIN_PORT="${GARAGE_ADMIN_PORT:-3903}"
BUCKET="${GARAGE_BUCKET:-kiln-test}"
# fixed test credentials (key id = GK + 24 hex, secret = 64 hex)
KEY_ID="${GARAGE_KEY_ID:-GK0123456789abcdef01234567}"
SECRET="${GARAGE_SECRET:-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef}"
mkdir -p "$DIR/meta" "$DIR/data"
export GARAGE_CONFIG_FILE="$DIR/garage.toml"
if [ ! -f "$GARAGE_CONFIG_FILE" ]; then
cat > "$GARAGE_CONFIG_FILE" <<TOML
metadata_dir = "$DIR/meta"
data_dir = "$DIR/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$S3_PORT"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$ADMIN_PORT"
admin_token = "$(head -c 32 /dev/urandom | base64)"
TOML
fi
if ! "$GARAGE_BIN" status >/dev/null 2>&1; then
  nohup "$GARAGE_BIN" server > "$DIR/server.log" 2>&1 &
  echo $! > "$DIR/garage.pid"
  for _ in $(seq 1 100); do "$GARAGE_BIN" status >/dev/null 2>&1 && break; sleep 0.1; done
fi
if "$GARAGE_BIN" status | grep -q "NO ROLE ASSIGNED"; then
  NODE="$("$GARAGE_BIN" node id -q | cut -d@ -f1)"
  "$GARAGE_BIN" layout assign -z dc1 -c 1G "$NODE" >/dev/null
  "$GARAGE_BIN" layout apply --version 1 >/dev/null
fi
"$GARAGE_BIN" key info "$KEY_ID" >/dev/null 2>&1 || "$GARAGE_BIN" key import --yes -n test-key "$KEY_ID" "$SECRET" >/dev/null
"$GARAGE_BIN" bucket info "$BUCKET" >/dev/null 2>&1 || "$GARAGE_BIN" bucket create "$BUCKET" >/dev/null
"$GARAGE_BIN" bucket allow --read --write --owner "$BUCKET" --key "$KEY_ID" >/dev/null
# wait until the S3 API answers (an unauthenticated request gets 403 once it is up)
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" && break; sleep 0.1; done
echo "S3_ENDPOINT=http://127.0.0.1:$S3_PORT S3_REGION=garage S3_BUCKET=$BUCKET S3_KEY=$KEY_ID S3_SECRET=$SECRET"
