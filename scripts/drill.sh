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
    cargo test --quiet -p kiln-tests --test drills -- --nocapture 2>&1 | grep -E "^trial|test result|panicked|assert"
}
if [ "$which" != postgres ]; then
  echo "== $trials trials on the embedded default"
  run embedded
fi
if [ "$which" != embedded ]; then
  pg_env="$(scripts/pg-test-start.sh | tail -n 1)"
  garage_env="$(scripts/garage-test-start.sh | tail -n 1)"
  export KILN_TEST_DATABASE_URL="${pg_env#DATABASE_URL=}"
  for pair in $garage_env; do
    case "$pair" in
      S3_ENDPOINT=*) export KILN_TEST_S3_ENDPOINT="${pair#*=}" ;;
      S3_REGION=*) export KILN_TEST_S3_REGION="${pair#*=}" ;;
      S3_BUCKET=*) export KILN_TEST_S3_BUCKET="${pair#*=}" ;;
      S3_KEY=*) export KILN_TEST_S3_ACCESS_KEY_ID="${pair#*=}" ;;
      S3_SECRET=*) export KILN_TEST_S3_SECRET_ACCESS_KEY="${pair#*=}" ;;
    esac
  done
  echo "== $trials trials on PostgreSQL + Garage"
  run postgres
fi
