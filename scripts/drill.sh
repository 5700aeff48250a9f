#!/usr/bin/env bash
# The long fault drill: TRIALS (default 100) SIGKILLs of kiln-server at random moments during pushes,
# pipeline jobs and alias moves, each followed by a restart and the check that every listed version holds
# exactly what was pushed (and the store's bytes their digests), the trial's versions pull byte for byte,
# and every manifest verifies (tests/tests/drills.rs; the suite runs 5 trials on the embedded default).
# Runs on the embedded default, then on PostgreSQL + Garage (started by the project's scripts).
# About 25 s a trial on 2 cores. Usage: scripts/drill.sh [TRIALS] [embedded|postgres|both]
set -euo pipefail
cd "$(dirname "$0")/.."
trials="${1:-100}"
which="${2:-both}"
cargo build --workspace --bins --quiet
run() {
  KILN_TEST_DRILL_TRIALS="$trials" KILN_TEST_DRILL_BACKEND="$1" \
    cargo test --quiet --workspace --test drills -- --nocapture 2>&1 | grep -E "^trial|test result|panicked|assert"
}
if [ "$which" != postgres ]; then
  echo "== $trials trials on the embedded default"
  run embedded
fi
if [ "$which" != embedded ]; then
  source scripts/test-services.sh
  echo "== $trials trials on PostgreSQL + Garage"
  run postgres
fi
