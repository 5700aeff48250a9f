#!/usr/bin/env bash
# ONNX Runtime's shared library for kiln-runner's `ort` engine, from the official wheels on PyPI, pinned by
# version and SHA-256: the wheel is downloaded once, checked, and its libraries unpacked into DEST, each
# checked again. Idempotent: a DEST that already holds the checked libraries is left alone. Prints the path
# of libonnxruntime.so.VERSION, the file a runner is pointed at. Nothing fetches ONNX Runtime at run time.
#   scripts/fetch-onnxruntime.sh [DEST]         CPU: `onnxruntime` (default DEST target/onnxruntime/VERSION)
#   scripts/fetch-onnxruntime.sh --gpu [DEST]   CUDA 13: `onnxruntime-gpu`, with its CUDA and TensorRT
#     execution providers (default DEST target/onnxruntime-gpu/VERSION; the wheel, ~250 MB, is kept
#     there too, for scripts/gpu-bench.sh's ORT_GPU_WHEEL). Needs the CUDA 13 runtime libraries and cuDNN 9
#     at run time (a PyTorch cu13x install has them; docs/gpu.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --gpu ]; then
  shift
  package=onnxruntime-gpu
  version=1.31.1
  wheel="onnxruntime_gpu-$version-cp312-cp312-manylinux_2_28_x86_64.whl"
  python_tag=3.12
  wheel_sha256=05d548956197b9d01f59b625de740e0d6be3593f874e241a12dc0362650ecdf7
  declare -A library_sha256=(
    ["libonnxruntime.so.$version"]=5104254339ecadae808da771bd0b63b240f0dbd466514234905e54372435c303
    [libonnxruntime_providers_shared.so]=086ec1d5388f64153d9c63470d126693db9a182c8ce236d3a1119068471b8a0d
    [libonnxruntime_providers_cuda.so]=8387867e857499e045caff5d13ac6a5de29571c801562fa2dde0e45f1f31de52
    [libonnxruntime_providers_tensorrt.so]=1882ee49fdb0e6fc2d272b00cfaf9a3310bf8580a34385c0eec4d82014ea172e
  )
  dest="${1:-target/onnxruntime-gpu/$version}"
  keep_wheel=true
else
  package=onnxruntime
  version=1.32.0
  wheel="onnxruntime-$version-cp311-cp311-manylinux_2_28_x86_64.whl"
  python_tag=3.11
  wheel_sha256=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d
  declare -A library_sha256=(
    ["libonnxruntime.so.$version"]=6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f
    [libonnxruntime_providers_shared.so]=8ef51f6bf2c621fc129f625b22241fa6f9a5870bc08eaf2fdd279169ec40d09a
  )
  dest="${1:-target/onnxruntime/$version}"
  keep_wheel=false
fi

checked() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

all_there=true
for name in "${!library_sha256[@]}"; do
  checked "$dest/$name" "${library_sha256[$name]}" || all_there=false
done
if ! $all_there; then
  download=$(mktemp -d)
  trap 'rm -rf "$download"' EXIT
  # pip from a venv of its own when the system Python has none (Debian's python3 without python3-pip).
  pip=(python3 -m pip)
  if ! python3 -m pip --version >/dev/null 2>&1; then
    python3 -m venv "$download/venv"
    pip=("$download/venv/bin/pip")
  fi
  # The C library inside is the same whatever the wheel's Python tag; pip only needs to be told which.
  "${pip[@]}" download --quiet --no-deps --only-binary=:all: --python-version "$python_tag" \
    --platform manylinux_2_28_x86_64 "$package==$version" -d "$download"
  checked "$download/$wheel" "$wheel_sha256" ||
    { echo "fetch-onnxruntime: $wheel does not have the pinned SHA-256; refusing it" >&2; exit 1; }
  mkdir -p "$dest"
  for name in "${!library_sha256[@]}"; do
    python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' \
      "$download/$wheel" "onnxruntime/capi/$name" >"$dest/$name.part"
    checked "$dest/$name.part" "${library_sha256[$name]}" ||
      { echo "fetch-onnxruntime: $name in the wheel does not have the pinned SHA-256" >&2; exit 1; }
    mv "$dest/$name.part" "$dest/$name"
  done
  if $keep_wheel; then
    cp "$download/$wheel" "$dest/$wheel"
  fi
fi
realpath "$dest/libonnxruntime.so.$version"
