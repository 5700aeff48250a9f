#!/usr/bin/env bash
# kiln's /v2/ OCI endpoint with real registry clients: skopeo (Debian's) and oras (the oras package from
# PyPI, pinned, in a venv under target/), against a real kiln-server on the embedded default, then on
# PostgreSQL + Garage when KILN_TEST_DATABASE_URL and KILN_TEST_S3_* are set (scripts/test.sh sets them). The tests
# (tests/oci) push models with the kiln CLI, then pull them by tag, alias and digest, anonymously and with
# credentials, compare every layer with kiln's own file digests, and verify the signed deployment manifest
# found through the referrers API with PyJWT and only the JWKS; skopeo copies a model back into a new
# version and oras pushes files as one (both through the pipeline); the image form unpacks to the files
# under models/; and the KServe storage initializer (deploy/kserve) pulls a verified alias.
# Installs skopeo with apt when it is missing. Part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
oras_version=0.2.43
pytest_version=9.2.0
pyjwt_version=2.10.1

if ! command -v skopeo >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends skopeo >/dev/null
fi
venv=target/py-oci
pins="oras==$oras_version pytest==$pytest_version pyjwt[crypto]==$pyjwt_version"
if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$pins" ]; then
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet $pins
  echo "$pins" >"$venv/.pins"
fi

cargo build --quiet --workspace --bin kiln-server --bin kiln
cargo build --quiet --workspace --example sample_onnx
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug"
source scripts/throwaway-server.sh
export KILN_BIN="$bin/kiln" KILN_SAMPLE_ONNX="$bin/examples/sample_onnx"

echo "OCI clients against the embedded default (SQLite + local files)"
start_throwaway_server "$bin/kiln-server" KILN_EMBEDDED_RUNNER=false KILN_RATE_LIMIT_PER_MINUTE=100000
KILN_PORT="$port" "$venv/bin/pytest" -q -p no:cacheprovider tests/oci
kill "$server" && wait "$server" 2>/dev/null || true
rm -rf "$work"

# PostgreSQL + Garage too, when scripts/test.sh (or the caller) says where they are: a fresh database
# and a fresh key prefix.
if [ -n "${KILN_TEST_DATABASE_URL:-}" ]; then
  echo "OCI clients against PostgreSQL + Garage (S3)"
  name="kiln_e2e_oci_$$_$RANDOM"
  psql "$KILN_TEST_DATABASE_URL" -qc "CREATE DATABASE $name"
  start_throwaway_server "$bin/kiln-server" KILN_EMBEDDED_RUNNER=false KILN_RATE_LIMIT_PER_MINUTE=100000 \
    KILN_DATABASE_URL="${KILN_TEST_DATABASE_URL%/*}/$name" \
    KILN_STORAGE_URL="s3://$KILN_TEST_S3_BUCKET/oci-$name" KILN_S3_ENDPOINT="$KILN_TEST_S3_ENDPOINT" \
    KILN_S3_REGION="${KILN_TEST_S3_REGION:-garage}" KILN_S3_ACCESS_KEY_ID="$KILN_TEST_S3_ACCESS_KEY_ID" \
    KILN_S3_SECRET_ACCESS_KEY="$KILN_TEST_S3_SECRET_ACCESS_KEY"
  KILN_PORT="$port" "$venv/bin/pytest" -q -p no:cacheprovider tests/oci
fi
