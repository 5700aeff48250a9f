#!/usr/bin/env bash
# Push and pull of one large file to the embedded default (release build), next to the raw speed of
# sha256sum and cp on the same file, with the server's peak RSS. Prints a Markdown table.
# Usage: scripts/bench-transfer.sh [SIZE_MIB=1024]
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB="${1:-1024}"
cargo build --release --bins -q
BIN="$PWD/target/release"
WORK="$(mktemp -d /tmp/kiln-bench.XXXXXX)"
trap 'kill "$SERVER_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/server" "$WORK/src"
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$WORK/src/weights.bin"
BYTES=$(stat -c %s "$WORK/src/weights.bin")

# Every step starts alike: earlier steps' dirty pages written back and the page cache emptied (when
# permitted, e.g. as root), then the step's input read into memory, so each row measures hashing, copying
# and writing rather than whatever the previous step left for the kernel to clean up.
prepare() {
  sync
  if [ -w /proc/sys/vm/drop_caches ]; then echo 1 > /proc/sys/vm/drop_caches; fi
  cat "$@" > /dev/null
}
seconds() { local start end; start=$(date +%s.%N); "$@" >/dev/null; end=$(date +%s.%N); echo "$end - $start" | bc -l; }
mbps() { echo "scale=1; $BYTES / 1000000 / $1" | bc -l; }

prepare "$WORK/src/weights.bin"
T_SHA=$(seconds sha256sum "$WORK/src/weights.bin")
prepare "$WORK/src/weights.bin"
T_CP=$(seconds cp "$WORK/src/weights.bin" "$WORK/copy.bin"); rm -f "$WORK/copy.bin"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TOKEN="kiln_bench_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
(cd "$WORK/server" && KILN_LISTEN="127.0.0.1:$PORT" KILN_BOOTSTRAP_TOKEN="$TOKEN" RUST_LOG=warn exec "$BIN/kiln-server" >/dev/null) &
SERVER_PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
export KILN_SERVER="http://127.0.0.1:$PORT" KILN_TOKEN="$TOKEN"
RSS_IDLE=$(awk '/VmRSS/ {print $2}' /proc/$SERVER_PID/status)
prepare "$WORK/src/weights.bin"
T_PUSH=$(seconds "$BIN/kiln" push "$WORK/src/weights.bin" bench/large:1)
RSS_PUSH=$(awk '/VmHWM/ {print $2}' /proc/$SERVER_PID/status)
prepare "$(find "$WORK/server/kiln-data/store/blobs" -type f)"
T_PULL=$(seconds "$BIN/kiln" pull bench/large:1 -o "$WORK/out")
RSS_PULL=$(awk '/VmHWM/ {print $2}' /proc/$SERVER_PID/status)
cmp "$WORK/src/weights.bin" "$WORK/out/weights.bin"

SLOWER=$(echo "if ($T_SHA > $T_CP) $T_SHA else $T_CP" | bc -l)
ratio() { echo "scale=2; $SLOWER / $1" | bc -l; }
echo "file: ${SIZE_MIB} MiB, $(nproc) cores, $(date -u +%Y-%m-%d)"
echo
echo "| operation | seconds | MB/s | × slower raw speed |"
echo "|---|---:|---:|---:|"
printf "| sha256sum | %.2f | %s | |\n" "$T_SHA" "$(mbps "$T_SHA")"
printf "| cp | %.2f | %s | |\n" "$T_CP" "$(mbps "$T_CP")"
printf "| kiln push (hash + upload + commit) | %.2f | %s | %s |\n" "$T_PUSH" "$(mbps "$T_PUSH")" "$(ratio "$T_PUSH")"
printf "| kiln pull (download + verify) | %.2f | %s | %s |\n" "$T_PULL" "$(mbps "$T_PULL")" "$(ratio "$T_PULL")"
echo
echo "server RSS: idle $((RSS_IDLE / 1024)) MiB, peak during push $((RSS_PUSH / 1024)) MiB, peak after pull $((RSS_PULL / 1024)) MiB"
