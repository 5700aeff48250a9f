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
cargo build --quiet --workspace --bin kiln-server --bin kiln
cargo build --quiet --workspace --example sample_checkpoint --example sample_onnx
source scripts/throwaway-server.sh
start_throwaway_server target/debug/kiln-server
target/debug/examples/sample_checkpoint gpt2 "$work/model" >/dev/null
target/debug/kiln push "$work/model" acme/crosscheck:1 --variants fp32 >/dev/null
settle acme/crosscheck:1
target/debug/kiln manifest acme/crosscheck:1 --jws >"$work/manifest.jws"
"$venv/bin/python" scripts/manifest-crosscheck.py "$KILN_SERVER/.well-known/jwks.json" "$work/manifest.jws" acme/crosscheck 1
# A version pushed with its lineage (docs/api.md, "Lineage"): the claim is in the signed document.
cat >"$work/lineage.json" <<'JSON'
{"parents": [{"reference": "acme/crosscheck:1", "role": "base"}],
 "datasets": [{"uri": "https://data.example/finetune.jsonl"}],
 "producer": {"name": "manifest-crosscheck", "version": "1"}, "hyperparameters": {"lr": 0.0001}}
JSON
target/debug/kiln push "$work/model" acme/crosscheck:2 --variants none --lineage "$work/lineage.json" >/dev/null
settle acme/crosscheck:2
target/debug/kiln manifest acme/crosscheck:2 --jws >"$work/lineage.jws"
"$venv/bin/python" scripts/manifest-crosscheck.py "$KILN_SERVER/.well-known/jwks.json" "$work/lineage.jws" acme/crosscheck 2 \
  --parent acme/crosscheck:1
# An alias's manifest, fetched the way a deployment system would: plain HTTP, compact JWS.
target/debug/kiln alias set acme/crosscheck production 1 >/dev/null
curl -fsS -H "accept: application/jose" -H "authorization: Bearer $token" \
  "$KILN_SERVER/api/v1/models/acme/crosscheck/aliases/production/manifest" >"$work/alias.jws"
"$venv/bin/python" scripts/manifest-crosscheck.py "$KILN_SERVER/.well-known/jwks.json" "$work/alias.jws" acme/crosscheck 1 production
# A model in a vendor's operator domain, which kiln cannot evaluate: ready as pushed, aliased, and its
# manifest (one variant, origin "pushed") verified the same way.
target/debug/examples/sample_onnx "$work/vendor" vendor-op >/dev/null
target/debug/kiln push "$work/vendor" acme/vendor:1 >/dev/null
settle acme/vendor:1
target/debug/kiln alias set acme/vendor production 1 >/dev/null
curl -fsS -H "accept: application/jose" -H "authorization: Bearer $token" \
  "$KILN_SERVER/api/v1/models/acme/vendor/aliases/production/manifest" >"$work/vendor.jws"
"$venv/bin/python" scripts/manifest-crosscheck.py "$KILN_SERVER/.well-known/jwks.json" "$work/vendor.jws" acme/vendor 1 production

