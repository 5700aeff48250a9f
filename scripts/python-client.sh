#!/usr/bin/env bash
# The Python client (clients/python) against a real kiln-server: first that the committed generated client
# (clients/python/kiln_client) is what openapi-python-client makes of openapi/openapi.json today, then the
# pytest suite in clients/python/tests, which starts target/debug/kiln-server (or $KILN_SERVER_BIN) on the
# embedded default in a temporary folder. Pinned tools in venvs under target/.
set -euo pipefail
cd "$(dirname "$0")/.."

pytest_version=9.2.0
pyjwt_version=2.10.1

# 1. The committed client is not stale.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fresh=$work/generated
scripts/python-client-generate.sh "$fresh"
if ! diff -r -q -x __pycache__ "$fresh/kiln_client" clients/python/kiln_client >&2; then
  echo "the committed client is stale: run scripts/python-client-generate.sh (and commit clients/python/kiln_client)" >&2
  exit 1
fi
echo "clients/python/kiln_client matches openapi/openapi.json"

# 2. The package installs as a user would install it, into a venv of its own.
venv=target/py-client
pins="pytest==$pytest_version pyjwt[crypto]==$pyjwt_version"
if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$pins" ]; then
  mkdir -p target
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet $pins
  echo "$pins" >"$venv/.pins"
fi
# Reinstalled every run (no build isolation download after the first): the tests must see this checkout.
"$venv/bin/pip" install --quiet --force-reinstall --no-deps ./clients/python
"$venv/bin/pip" install --quiet ./clients/python
rm -rf clients/python/build clients/python/*.egg-info

# 3. pytest against a real server.
export KILN_SERVER_BIN=${KILN_SERVER_BIN:-$PWD/target/debug/kiln-server}
if [ ! -x "$KILN_SERVER_BIN" ]; then
  cargo build --quiet --workspace --bin kiln-server
fi
# From the tests' folder, so that `import kiln` finds the installed package, not the source tree.
cd clients/python/tests
# Their temporary folders (a server's data, pushed and pulled copies) go with the rest on exit.
"$PWD/../../../$venv/bin/python" -m pytest -p no:cacheprovider --basetemp="$work/pytest" "$@" .
