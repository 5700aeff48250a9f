#!/usr/bin/env bash
# Regenerates the Python client's generated part, clients/python/kiln_client, from openapi/openapi.json with
# openapi-python-client and ruff (pinned, in a venv under target/; settings in
# clients/openapi-python-client.yaml). Commit the result. The hand-written layer (clients/python/kiln) is
# not touched.
#
#   scripts/python-client-generate.sh [DEST]   # writes DEST/kiln_client (DEST: clients/python by default)
#
# scripts/python-client.sh regenerates into a temporary DEST and fails when it differs from the commit.
set -euo pipefail
cd "$(dirname "$0")/.."

generator_version=0.29.1
ruff_version=0.17.5

venv=target/py-client-gen
pins="openapi-python-client==$generator_version ruff==$ruff_version"
if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$pins" ]; then
  mkdir -p target
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet $pins
  echo "$pins" >"$venv/.pins"
fi

dest=${1:-clients/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The post hooks call ruff by name: the venv's, not whatever else is on PATH.
PATH="$PWD/$venv/bin:$PATH" "$venv/bin/openapi-python-client" generate --path openapi/openapi.json \
  --meta none --config clients/openapi-python-client.yaml --output-path "$work/kiln_client" >/dev/null
mkdir -p "$dest"
rm -rf "$dest/kiln_client"
mv "$work/kiln_client" "$dest/kiln_client"
