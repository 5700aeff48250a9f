#!/usr/bin/env bash
# The web UI in a real browser: Debian's Chromium driven over WebDriver (selenium from PyPI, pinned, in a
# venv under target/) against a real kiln-server on the embedded default, with its embedded runner so
# versions carry real benchmarks. The tests (tests/browser) push their models with the kiln CLI and check
# what a person sees: browsing, sign-in, private models, search and pages, the variants table and charts,
# moving an alias, CSRF, and inert hostile markup.
# Usage: scripts/ui-test.sh [--screenshots]   (--screenshots writes the main pages to docs/ui/)
# Installs chromium and chromium-driver with apt when they are missing. Part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
selenium_version=4.27.1
pytest_version=9.2.0

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi
venv=target/py-browser
pins="selenium==$selenium_version pytest==$pytest_version"
if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$pins" ]; then
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet $pins
  echo "$pins" >"$venv/.pins"
fi
[ "${1:-}" = --screenshots ] && export KILN_UI_SCREENSHOTS="$PWD/docs/ui"

cargo build --quiet --workspace --bin kiln-server --bin kiln
cargo build --quiet --workspace --example sample_onnx
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug"
source scripts/throwaway-server.sh
# The embedded runner benchmarks each variant on this machine's CPU, so version pages have real charts.
start_throwaway_server "$bin/kiln-server" KILN_EMBEDDED_RUNNER=true \
  KILN_RATE_LIMIT_PER_MINUTE=100000
export KILN_BIN="$bin/kiln" KILN_SAMPLE_ONNX="$bin/examples/sample_onnx"
"$venv/bin/pytest" -q -p no:cacheprovider tests/browser
