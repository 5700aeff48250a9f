#!/usr/bin/env bash
# Builds kiln-runner with CUDA (candle's kernels compiled by nvcc) on a machine without a GPU.
# The CUDA 13.0 toolkit comes from PyPI wheels into a venv (matching a host with CUDA 13 / driver 580);
# nothing else is installed. Output: target/cuda-runner/kiln-runner (and a .gz to carry). See docs/gpu.md.
#
#   scripts/build-cuda-runner.sh            # sm_90 (H100/H200)
#   CUDA_COMPUTE_CAP=80 scripts/build-cuda-runner.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${KILN_CUDA_VENV:-target/cuda-venv}
if [ ! -x "$venv/bin/pip" ]; then
  python3 -m venv "$venv"
fi
# Pinned: the versions this build was proven with (docs/gpu.md).
"$venv/bin/pip" install --quiet \
  nvidia-cuda-nvcc==13.0.88 nvidia-cuda-runtime==13.0.96 nvidia-cuda-crt==13.0.88 \
  nvidia-cuda-cccl==13.0.85 nvidia-nvvm==13.0.88 nvidia-cuda-nvrtc==13.0.88 \
  nvidia-cublas==13.1.0.3 nvidia-curand==10.4.0.35
cu=$(ls -d "$PWD/$venv"/lib/python3*/site-packages/nvidia/cu13 | head -n 1)
[ -x "$cu/bin/nvcc" ] || { echo "nvcc not found under $cu" >&2; exit 1; }
export PATH="$cu/bin:$PATH" CUDA_HOME="$cu" CUDA_PATH="$cu" CUDA_ROOT="$cu"
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export CUDARC_CUDA_VERSION=13000
# candle-kernels links -lcudart; the wheel ships the static library only: a linker script stands in.
shim="$PWD/target/cuda-shim"
mkdir -p "$shim"
echo "INPUT($cu/lib/libcudart_static.a -ldl -lrt -lpthread)" >"$shim/libcudart.so"
# candle links cudarc dynamically (-lcuda -lnvrtc -lcurand -lcublas -lcublasLt): the wheels ship the last
# four only under their versioned names, and the driver's libcuda.so.1 exists only on a GPU host. For the
# link: unversioned names for the wheel libraries, and a stub libcuda.so (SONAME libcuda.so.1, every
# cu* function cudarc declares, doing nothing) as NVIDIA's own stubs/libcuda.so does it. At run time the
# host's real libraries are loaded in their place (docs/gpu.md).
for lib in nvrtc.so.13 curand.so.10 cublas.so.13 cublasLt.so.13; do
  ln -sf "$cu/lib/lib$lib" "$shim/lib${lib%%.so*}.so"
done
cargo fetch --quiet
cudarc_src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* | tail -n 1)
grep -ohE '^ +fn (cu[A-Za-z0-9_]+)\(' "$cudarc_src/src/driver/sys/mod.rs" | sed -E 's/ +fn (cu[A-Za-z0-9_]+)\(/\1/' |
  sort -u | sed -E 's/(.*)/void \1(void) {}/' >"$shim/cuda-stub.c"
cc -shared -fPIC -o "$shim/libcuda.so" -Wl,-soname,libcuda.so.1 "$shim/cuda-stub.c"
RUSTFLAGS="${RUSTFLAGS:-} -L native=$shim" CARGO_TARGET_DIR=target/cuda \
  cargo build --release -p kiln-runner --features cuda
mkdir -p target/cuda-runner
cp target/cuda/release/kiln-runner target/cuda-runner/kiln-runner
strip target/cuda-runner/kiln-runner
gzip -9 -k -f target/cuda-runner/kiln-runner
ls -l target/cuda-runner/
