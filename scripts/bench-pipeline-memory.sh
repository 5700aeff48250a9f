#!/usr/bin/env bash
# Memory of the API process and of the pipeline steps' child processes while a checkpoint goes through the
# whole pipeline on the embedded default (SQLite + local files): the API process's peak RSS (VmHWM), its RSS
# when idle afterwards, each `kiln-server pipeline-step` child's peak RSS (which the server logs), and the
# time to ready and to the end of the pipeline.
# Usage: scripts/bench-pipeline-memory.sh [bert|bert-base|llama-3b|llama-7b] [--release]
# (bert-base: BERT-base's shape, 109 M parameters; llama-3b and llama-7b: random bf16 Llamas with
# OpenLLaMA-3B's and Llama-2-7B's shapes, sharded as save_pretrained writes them. The embedded runner is
# off so that only the API process and its step children are measured. KILN_BENCH_VARIANTS=LIST pushes
# with --variants LIST, KILN_BENCH_LAYERS=N gives a Llama N layers: a 7B model's default variants need about 6 times its 13.5 GB on disk, int4 alone
# about 3 times. The checkpoint is removed once pushed, to leave the disk to the server.)
set -euo pipefail
cd "$(dirname "$0")/.."
family="${1:-bert-base}"
variants=()
[ -n "${KILN_BENCH_VARIANTS:-}" ] && variants=(--variants "$KILN_BENCH_VARIANTS")
profile=debug; build=()
[ "${2:-}" = --release ] && { profile=release; build=(--release); }
cargo build --quiet "${build[@]}" -p kiln-server -p kiln-cli
cargo build --quiet "${build[@]}" -p kiln-onnx --example sample_checkpoint --example llama_checkpoint
bin="target/$profile"
source scripts/throwaway-server.sh
# The embedded runner off: only the API process and its step children are measured.
start_throwaway_server "$bin/kiln-server" KILN_EMBEDDED_RUNNER=false
case "$family" in
  llama-*) "$bin/examples/llama_checkpoint" "$work/model" "${family#llama-}" ${KILN_BENCH_LAYERS:-} >/dev/null ;;
  *) "$bin/examples/sample_checkpoint" "$family" "$work/model" >/dev/null ;;
esac
checkpoint_bytes=$(du -sb "$work/model" | cut -f1)
kb() { awk -v key="$2:" '$1 == key {print $2}' "/proc/$1/status"; }
start=$(date +%s%N)
"$bin/kiln" push "$work/model" acme/memory:1 "${variants[@]}" >/dev/null
pushed_at=$(( ($(date +%s%N) - start) / 1000000 ))
rm -rf "$work/model"
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
  kb "$server" VmHWM >/dev/null || { echo "kiln-server exited; its log:"; tail -20 "$work/server.log"; exit 1; }
  [ "$state" = "ready settled" ] && { done_at=$(( (now - start) / 1000000 )); break; }
  sleep 0.1
done
sleep 2
idle=$(kb "$server" VmRSS); api_peak=$(kb "$server" VmHWM)
"$bin/kiln" show acme/memory:1 --json | python3 -c '
import json, sys
from datetime import datetime
d = json.load(sys.stdin)
def seconds(j):
    if not j.get("started_at") or not j.get("finished_at"):
        return ""
    parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))
    return "%.0f s" % (parse(j["finished_at"]) - parse(j["started_at"])).total_seconds()
for j in d["pipeline"]:
    print("  %-9s %-10s %6s %s" % (j["kind"], j["state"], seconds(j), (j.get("message") or "")[:80]))
for v in d["variants"]:
    size = sum(f["size"] for f in v["files"])
    val = v.get("validation") or {}
    print("  variant %-10s %-10s %8.0f MiB  rel L2 %s  top-1 %s  top-5 %s" % (v["name"], v["status"],
          size / 2**20, val.get("rel_l2_error", "-"), val.get("top1_agreement", "-"), val.get("top5_agreement", "-")))'
printf '\n| %s (%s build) | MiB |\n|---|---|\n' "$family" "$profile"
printf '| API process, peak RSS during the pipeline | %d |\n' $((api_peak / 1024))
printf '| API process, RSS idle afterwards | %d |\n' $((idle / 1024))
grep -o 'step="[a-z]*" peak_rss_mib=[0-9]*' "$work/server.log" | sed 's/step="\([a-z]*\)" peak_rss_mib=/\1 /' |
  while read -r step mib; do printf '| %s step child, peak RSS | %d |\n' "$step" "$mib"; done
printf '| checkpoint bytes | %s |\n' "$checkpoint_bytes"
printf '| ms to pushed / to ready (scanned) / to the end of the pipeline | %s / %s / %s |\n' "$pushed_at" "$ready_at" "$done_at"
