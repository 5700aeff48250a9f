#!/usr/bin/env bash
# Verifies a manifest published by a real kiln-server with an independent JOSE implementation (PyJWT from
# PyPI, in a venv under target/), given only the JWKS URL. Part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/py-jose
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "pyjwt[crypto]==2.10.1"
fi
cargo build --quiet -p kiln-server -p kiln-cli
cargo build --quiet -p kiln-onnx --example sample_checkpoint
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
token=manifest-crosscheck-token-0123456789abcdef
KILN_DATA_DIR="$work/data" KILN_LISTEN="127.0.0.1:$port" KILN_BOOTSTRAP_TOKEN="$token" \
  target/debug/kiln-server >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
export KILN_SERVER="http://127.0.0.1:$port" KILN_TOKEN="$token"
for _ in $(seq 100); do curl -fs "$KILN_SERVER/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
target/debug/examples/sample_checkpoint gpt2 "$work/model" >/dev/null
target/debug/kiln push "$work/model" acme/crosscheck:1 --variants fp32 >/dev/null
for _ in $(seq 300); do
  status=$(target/debug/kiln show acme/crosscheck:1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
  [ "$status" = ready ] && break
  [ "$status" = failed ] && { echo "the pipeline failed"; exit 1; }
  sleep 0.2
done
target/debug/kiln manifest acme/crosscheck:1 --jws >"$work/manifest.jws"
"$venv/bin/python" scripts/manifest-crosscheck.py "$KILN_SERVER/.well-known/jwks.json" "$work/manifest.jws" acme/crosscheck 1
# An alias's manifest, fetched the way a deployment system would: plain HTTP, compact JWS.
target/debug/kiln alias set acme/crosscheck production 1 >/dev/null
curl -fsS -H "accept: application/jose" -H "authorization: Bearer $token" \
  "$KILN_SERVER/api/v1/models/acme/crosscheck/aliases/production/manifest" >"$work/alias.jws"
"$venv/bin/python" scripts/manifest-crosscheck.py "$KILN_SERVER/.well-known/jwks.json" "$work/alias.jws" acme/crosscheck 1 production
