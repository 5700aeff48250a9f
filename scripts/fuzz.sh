#!/usr/bin/env bash
# cargo-fuzz (libFuzzer) on kiln's parsers of untrusted input: a safetensors header, the pickle scanner,
# the ONNX protobuf reader and model checks, names and references, Range/Content-Range headers, the
# manifest JWS verification, and whole Open Inference Protocol requests through kiln-runner's REST and
# gRPC front ends in process, down to kiln's evaluator or ONNX Runtime and back (oip_*; oip_ort_strings
# needs ONNX Runtime's library, fetched by scripts/fetch-onnxruntime.sh), and every operator of kiln's
# evaluator under a run's memory limit, its allocations counted (eval_memory) (fuzz/fuzz_targets/). Each target
# runs SECONDS (default 300) from its seeds (fuzz/seeds/, and its dictionary in fuzz/dicts/ when it has
# one) and the corpus it grew before (fuzz/corpus/, not committed); a crash stops the script with
# the input under fuzz/artifacts/, and so does a fuzzer that stops without finishing its run (its output
# in fuzz/target/fuzz-TARGET.log). scripts/test.sh runs every target for 10 s.
# cargo-fuzz needs nightly features: on a stable toolchain RUSTC_BOOTSTRAP=1 lets it build; without
# address sanitizer (-s none) unless SANITIZER=address (slower, for the unsafe code underneath).
# FUZZ_DEV=1 builds unoptimized (about 2 minutes less to build from nothing, about 14 times fewer
# executions a second; overflow checks are on either way): what scripts/test.sh uses for its brief run.
# Installs cargo-fuzz from crates.io when missing. Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-300}"
shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
export RUSTC_BOOTSTRAP=1
sanitizer="${SANITIZER:-none}"
profile=()
if [ "${FUZZ_DEV:-0}" = 1 ]; then
  profile=(--dev)
  # Line tables are enough for a crash's stack trace; full debug info and incremental data made the brief
  # run's build from nothing 344 s instead of 295 s here (and 3.3 GB instead of 1.9). kiln-onnx without its
  # pipeline feature (fuzz/Cargo.toml) took it to 124 s.
  export CARGO_PROFILE_DEV_DEBUG=line-tables-only CARGO_PROFILE_DEV_INCREMENTAL=false
fi
cd fuzz
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
# ONNX Runtime's library for oip_ort_strings (its model is served on the `ort` engine), fetched once.
if [[ " ${targets[*]} " == *" oip_ort_strings "* && -z "${KILN_ONNXRUNTIME_LIB:-}" ]]; then
  KILN_ONNXRUNTIME_LIB="$(../scripts/fetch-onnxruntime.sh)"
  export KILN_ONNXRUNTIME_LIB
fi
cargo fuzz build "${profile[@]}" -s "$sanitizer" >/dev/null
# fuzz/target holds the runs' logs even when CARGO_TARGET_DIR puts the build elsewhere.
mkdir -p target
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  seeds=()
  [ -d "seeds/$target" ] && seeds=("seeds/$target")
  # A target's dictionary (fuzz/dicts/): the tokens of its format, which mutations insert whole.
  dict=()
  [ -f "dicts/$target.dict" ] && dict=(-dict="dicts/$target.dict")
  echo "== $target ($seconds s)"
  log="target/fuzz-$target.log"
  status=0
  cargo fuzz run "${profile[@]}" -s "$sanitizer" "$target" "corpus/$target" "${seeds[@]}" -- \
    "${dict[@]}" -max_total_time="$seconds" -timeout=120 -rss_limit_mb=2048 -max_len=1048576 -print_final_stats=1 >"$log" 2>&1 ||
    status=$?
  grep -E "^(stat::number_of_executed_units|stat::new_units_added|==[0-9]+==|SUMMARY|Done)" "$log" || true
  if compgen -G "artifacts/$target/*" >/dev/null; then
    echo "$target: crash inputs in fuzz/artifacts/$target" >&2
    exit 1
  fi
  # A fuzzer that stopped without a crash input did not run (a missing folder, a bad flag): a failure too,
  # never a pass.
  if [ "$status" -ne 0 ] || ! grep -q "^Done [0-9]* runs" "$log"; then
    tail -20 "$log" >&2
    echo "$target: the fuzzer did not run to its end (exit status $status); fuzz/$log has its output" >&2
    exit 1
  fi
done
