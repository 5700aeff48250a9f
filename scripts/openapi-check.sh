#!/usr/bin/env bash
# The OpenAPI document against two independent validators, then real answers against it:
# openapi/openapi.json must have zero errors in openapi-spec-validator (Python, pinned, in a venv under
# target/) and in Redocly CLI's lint (npm, pinned, under target/; rules in openapi/redocly.yaml); then a
# real kiln-server (embedded default) serves the same document, and the JSON answers of representative
# operations must have a declared status and validate against the declared schema
# (scripts/openapi_responses.py). Part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

spec_validator_version=0.9.0
jsonschema_version=4.26.0
redocly_version=2.77.0

venv=target/py-openapi
pins="openapi-spec-validator==$spec_validator_version jsonschema==$jsonschema_version"
if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$pins" ]; then
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet $pins
  echo "$pins" >"$venv/.pins"
fi
node_dir=target/node-openapi
redocly="$node_dir/node_modules/.bin/redocly"
if [ "$(cat "$node_dir/.pins" 2>/dev/null)" != "$redocly_version" ]; then
  mkdir -p "$node_dir"
  [ -f "$node_dir/package.json" ] || echo '{"private": true}' >"$node_dir/package.json"
  npm install --prefix "$node_dir" --silent --no-audit --no-fund --save-exact "@redocly/cli@$redocly_version"
  echo "$redocly_version" >"$node_dir/.pins"
fi

# Counts every error rather than stopping at the first, so the count printed is the whole story.
spec_errors() {
  "$venv/bin/python" - "$1" <<'PY'
import sys
from openapi_spec_validator.readers import read_from_filename
from openapi_spec_validator.validation import OpenAPIV31SpecValidator
spec, _ = read_from_filename(sys.argv[1])
errors = list(OpenAPIV31SpecValidator(spec).iter_errors())
for error in errors[:20]:
    print(f"  {'/'.join(map(str, error.path))}: {error.message[:200]}", file=sys.stderr)
print(len(errors))
PY
}

failed=0
count=$(spec_errors openapi/openapi.json)
echo "openapi-spec-validator $spec_validator_version: $count errors in openapi/openapi.json"
[ "$count" = 0 ] || failed=1
if lint=$(NO_UPDATE_NOTIFIER=1 REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
  "$redocly" lint openapi/openapi.json --config openapi/redocly.yaml --format=summary 2>&1); then
  echo "redocly lint $redocly_version: 0 errors in openapi/openapi.json"
else
  echo "$lint" | grep -E '^(error|warning) ' >&2 || echo "$lint" >&2
  errors=$(echo "$lint" | sed -n 's/.*failed with \([0-9]*\) error.*/\1/p')
  echo "redocly lint $redocly_version: ${errors:-some} errors in openapi/openapi.json"
  failed=1
fi
[ "$failed" = 0 ] || exit 1

# The served document, and real answers against it.
cargo build --quiet --workspace --bin kiln-server --bin kiln
cargo build --quiet --workspace --example sample_checkpoint
source scripts/throwaway-server.sh
start_throwaway_server target/debug/kiln-server
curl -fsS "$KILN_SERVER/api-docs/openapi.json" >"$work/served.json"
count=$(spec_errors "$work/served.json")
echo "openapi-spec-validator $spec_validator_version: $count errors in the served /api-docs/openapi.json"
[ "$count" = 0 ]
cmp -s <(python3 -m json.tool --sort-keys "$work/served.json") \
  <(python3 -m json.tool --sort-keys openapi/openapi.json) ||
  { echo "the served document differs from openapi/openapi.json"; exit 1; }

target/debug/examples/sample_checkpoint gpt2 "$work/model" >/dev/null
target/debug/kiln push "$work/model" acme/openapi:1 --variants fp32 >/dev/null
for _ in $(seq 300); do
  status=$(target/debug/kiln show acme/openapi:1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
  [ "$status" = ready ] && break
  [ "$status" = failed ] && { echo "acme/openapi:1: the scan refused it"; exit 1; }
  sleep 0.2
done
target/debug/kiln alias set acme/openapi production 1 >/dev/null
# The embedded runner registers itself shortly after start; the listing must hold a real runner.
for _ in $(seq 100); do
  [ "$(curl -fsS -H "authorization: Bearer $token" "$KILN_SERVER/api/v1/runners")" != "[]" ] && break
  sleep 0.1
done
"$venv/bin/python" scripts/openapi_responses.py "$KILN_SERVER" "$token" acme/openapi/versions/1
