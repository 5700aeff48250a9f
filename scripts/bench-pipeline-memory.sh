#!/usr/bin/env bash
# Memory of the API process and of the pipeline steps' child processes while a checkpoint goes through the
# whole pipeline on the embedded default (SQLite + local files): the API process's peak RSS (VmHWM), its RSS
# when idle afterwards, each `kiln-server pipeline-step` child's peak RSS (which the server logs), and the
# time to ready and to the end of the pipeline.
# Usage: scripts/bench-pipeline-memory.sh [bert|bert-base] [--release]
# (bert-base: BERT-base's shape, 109 M parameters; the embedded runner is off so that only the API process
# and its step children are measured.)
set -euo pipefail
cd "$(dirname "$0")/.."
family="${1:-bert-base}"
profile=debug; build=()
[ "${2:-}" = --release ] && { profile=release; build=(--release); }
cargo build --quiet "${build[@]}" -p kiln-server -p kiln-cli
cargo build --quiet "${build[@]}" -p kiln-onnx --example sample_checkpoint
bin="target/$profile"
source scripts/throwaway-server.sh
# The embedded runner off: only the API process and its step children are measured.
start_throwaway_server "$bin/kiln-server" KILN_EMBEDDED_RUNNER=false
"$bin/examples/sample_checkpoint" "$family" "$work/model" >/dev/null
kb() { awk -v key="$2:" '$1 == key {print $2}' "/proc/$1/status"; }
start=$(date +%s%N)
"$bin/kiln" push "$work/model" acme/memory:1 >/dev/null
ready_at=""; done_at=""
while :; do
  state=$("$bin/kiln" show acme/memory:1 --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
busy = any(j["state"] in ("queued", "running") for j in d["pipeline"] if j["kind"] != "benchmark")
print(d["status"], "busy" if busy else "settled")')
  now=$(date +%s%N)
  [ -z "$ready_at" ] && [ "${state% *}" = ready ] && ready_at=$(( (now - start) / 1000000 ))
  [ "${state% *}" = failed ] && { echo "the scan refused the checkpoint"; exit 1; }
  [ "$state" = "ready settled" ] && { done_at=$(( (now - start) / 1000000 )); break; }
  sleep 0.1
done
sleep 2
idle=$(kb "$server" VmRSS); api_peak=$(kb "$server" VmHWM)
"$bin/kiln" show acme/memory:1 --json | python3 -c '
import json, sys
for j in json.load(sys.stdin)["pipeline"]:
    print("  %-9s %-10s %s" % (j["kind"], j["state"], (j.get("message") or "")[:90]))'
printf '\n| %s (%s build) | MiB |\n|---|---|\n' "$family" "$profile"
printf '| API process, peak RSS during the pipeline | %d |\n' $((api_peak / 1024))
printf '| API process, RSS idle afterwards | %d |\n' $((idle / 1024))
grep -o 'step="[a-z]*" peak_rss_mib=[0-9]*' "$work/server.log" | sed 's/step="\([a-z]*\)" peak_rss_mib=/\1 /' |
  while read -r step mib; do printf '| %s step child, peak RSS | %d |\n' "$step" "$mib"; done
printf '| ms to ready (scanned) / to the end of the pipeline | %s / %s |\n' "$ready_at" "$done_at"
