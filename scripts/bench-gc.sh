#!/usr/bin/env bash
# Garbage collection at scale on PostgreSQL: ROWS blob rows (default 1,000,000), GARBAGE_PERCENT of them
# (default 10) referenced by nothing and recorded two days ago, the rest held by versions of one model.
# The garbage blobs' objects exist in a local store, so the sweep deletes real files. A release kiln-server
# runs a dry run, then the collection; the table has each one's time and the server's peak RSS.
# Usage: scripts/bench-gc.sh [ROWS=1000000] [GARBAGE_PERCENT=10]
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-1000000}"
GARBAGE_PERCENT="${2:-10}"
cargo build --release -p kiln-server -q
BIN="$PWD/target/release"
PG_URL="$(scripts/pg-test-start.sh | tail -n 1)"
PG_URL="${PG_URL#DATABASE_URL=}"
DB="kiln_bench_gc_$$"
WORK="$(mktemp -d /tmp/kiln-bench-gc.XXXXXX)"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
psql "$PG_URL" -qc "CREATE DATABASE $DB"
DB_URL="${PG_URL%/*}/$DB"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TOKEN="kiln_bench_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
start_server() {
  (cd "$WORK" && KILN_LISTEN="127.0.0.1:$PORT" KILN_BOOTSTRAP_TOKEN="$TOKEN" KILN_DATABASE_URL="$DB_URL" \
    KILN_STORAGE_URL="file://$WORK/store" KILN_EMBEDDED_RUNNER=false KILN_PIPELINE_WORKERS=0 \
    KILN_GC_INTERVAL_MINUTES=0 RUST_LOG=warn exec "$BIN/kiln-server" >"$WORK/server.log" 2>&1) &
  SERVER_PID=$!
  for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return; sleep 0.1; done
  cat "$WORK/server.log"; exit 1
}
# The server creates the schema; the rows go in behind it, as years of pushes would have left them.
start_server
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""

echo "filling: $ROWS blob rows, $GARBAGE_PERCENT % garbage" >&2
FILL_START=$(date +%s)
psql "$DB_URL" -q <<SQL
INSERT INTO namespaces (id, name, created_at, kind, owner_id, store_unsafe_pickles)
  VALUES ('ns-bench', 'bench', now(), 'org', NULL, false);
INSERT INTO models (id, namespace_id, name, description, tags, created_at, updated_at, visibility)
  VALUES ('model-bench', 'ns-bench', 'many', '', '[]', now(), now(), 'private');
INSERT INTO blobs (digest, size, created_at, state)
  SELECT 'sha256:' || encode(sha256(i::text::bytea), 'hex'), 4096, now() - interval '2 days', 'live'
  FROM generate_series(1, $ROWS) AS i;
-- One version per 1,000 rows; every row not in the garbage share is one of its files.
INSERT INTO versions (id, model_id, version, status, created_at)
  SELECT 'version-' || v, 'model-bench', v::text, 'ready', now() - interval '2 days'
  FROM generate_series(0, ($ROWS - 1) / 1000) AS v;
INSERT INTO version_files (version_id, path, digest, size)
  SELECT 'version-' || (i / 1000), 'f' || i || '.bin', 'sha256:' || encode(sha256(i::text::bytea), 'hex'), 4096
  FROM generate_series(1, $ROWS) AS i
  WHERE i % 100 >= $GARBAGE_PERCENT;
ANALYZE;
SQL
# The garbage blobs' objects (4 KiB each), where the local store keeps them.
python3 - "$WORK/store" "$ROWS" "$GARBAGE_PERCENT" <<'PY'
import hashlib, os, sys
root, rows, percent = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
payload = b"\0" * 4096
for i in range(1, rows + 1):
    if i % 100 < percent:
        hexd = hashlib.sha256(str(i).encode()).hexdigest()
        folder = os.path.join(root, "blobs", "sha256", hexd[:2])
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, hexd), "wb") as f:
            f.write(payload)
PY
FILL_SECONDS=$(( $(date +%s) - FILL_START ))
OBJECTS_BEFORE=$(find "$WORK/store/blobs" -type f | wc -l)

start_server
RSS_IDLE=$(awk '/VmRSS/ {print $2}' /proc/$SERVER_PID/status)
collect() {
  curl -sf -X POST "http://127.0.0.1:$PORT/api/v1/admin/gc" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d "$1"
}
DRY=$(collect '{"dry_run": true}')
RSS_DRY=$(awk '/VmHWM/ {print $2}' /proc/$SERVER_PID/status)
RUN=$(collect '{}')
RSS_RUN=$(awk '/VmHWM/ {print $2}' /proc/$SERVER_PID/status)
OBJECTS_AFTER=$(find "$WORK/store/blobs" -type f | wc -l)
ROWS_AFTER=$(psql "$DB_URL" -tAc "SELECT count(*) FROM blobs")
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

echo "PostgreSQL $(psql "$PG_URL" -tAc 'SHOW server_version'), $(nproc) cores, $(date -u +%Y-%m-%d); filled in ${FILL_SECONDS} s"
echo
echo "| run | blob rows | deleted | seconds | server peak RSS |"
echo "|---|---:|---:|---:|---:|"
printf "| dry run | %s | %s (would) | %.1f | %d MiB |\n" "$(field "$DRY" blobs_scanned)" "$(field "$DRY" blobs_deleted)" \
  "$(echo "$(field "$DRY" duration_ms) / 1000" | bc -l)" $((RSS_DRY / 1024))
printf "| collection | %s | %s | %.1f | %d MiB |\n" "$(field "$RUN" blobs_scanned)" "$(field "$RUN" blobs_deleted)" \
  "$(echo "$(field "$RUN" duration_ms) / 1000" | bc -l)" $((RSS_RUN / 1024))
echo
echo "server RSS idle: $((RSS_IDLE / 1024)) MiB; objects $OBJECTS_BEFORE → $OBJECTS_AFTER; blob rows $ROWS → $ROWS_AFTER"
EXPECTED=$(( ROWS * GARBAGE_PERCENT / 100 ))
if [ "$(field "$RUN" blobs_deleted)" != "$EXPECTED" ] || [ "$OBJECTS_AFTER" != 0 ] || [ "$ROWS_AFTER" != $((ROWS - EXPECTED)) ]; then
  echo "MISMATCH: expected $EXPECTED deleted, no objects left, $((ROWS - EXPECTED)) rows" >&2
  exit 1
fi
