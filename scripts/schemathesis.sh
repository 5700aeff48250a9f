#!/usr/bin/env bash
# Schemathesis (PyPI, pinned, in a venv under target/) against a real kiln-server on the embedded default,
# driven by the document it serves: every check on every operation, a bounded number of examples each
# (KILN_SCHEMATHESIS_EXAMPLES, default 20), a fixed seed so runs repeat. Fails on any 5xx, network error,
# answer that breaks the document (status, content type, headers, body schema), wrong answer to an
# undeclared method, accepted invalid data, or refused valid data. Where a schema-valid request is refused
# for a reason the document cannot state (an opaque cursor, bytes that must hash to a digest), the
# positive-data check gets a valid value or is off for that operation alone: scripts/schemathesis.toml,
# with the reasons. Part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
version=4.32.5
venv=target/py-schemathesis
if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$version" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==$version"
  echo "$version" >"$venv/.pins"
fi
cargo build --quiet --workspace --bin kiln-server
bin="${CARGO_TARGET_DIR:-target}/debug"
source scripts/throwaway-server.sh
start_throwaway_server "$bin/kiln-server" KILN_EMBEDDED_RUNNER=false \
  KILN_RATE_LIMIT_PER_MINUTE=1000000
# The document's examples name acme/sentiment 1.0.0, its onnx/model.onnx and the alias production: make
# them exist, so that the operations on models, versions, files and aliases are exercised, not only 404s.
cargo build --quiet --workspace --bin kiln
cargo build --quiet --workspace --example sample_onnx
"$bin/examples/sample_onnx" "$work/model/onnx" >/dev/null
"$bin/kiln" push "$work/model" acme/sentiment:1.0.0 >/dev/null
for _ in $(seq 300); do
  "$bin/kiln" show acme/sentiment:1.0.0 --json | grep -q '"status": *"ready"' && break
  sleep 0.2
done
"$bin/kiln" alias set acme/sentiment production 1.0.0 >/dev/null
"$venv/bin/schemathesis" --config-file scripts/schemathesis.toml \
  run "http://127.0.0.1:$port/api-docs/openapi.json" \
  -H "Authorization: Bearer $token" \
  --max-examples "${KILN_SCHEMATHESIS_EXAMPLES:-20}" --seed 1 --workers 1 \
  --report-dir "$work/report"
