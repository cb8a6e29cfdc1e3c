#!/usr/bin/env bash
# The GPU check: builds loom on a machine with an NVIDIA GPU and runs what
# needs one there (the C++ tests, whose GPU cases skip elsewhere; every
# generated suite's CPU-vs-CUDA check; tests/python/test_gpu.py; the GPU
# benchmarks). CI has no GPU, so this is run by hand (or through the
# device tool) whenever a GPU is at hand:
#   bash tools/device_check.sh [cuda-arch, default 90]
# Logs go to $OUT (default /tmp/loom-device-check). GoogleTest may be
# carried as Debian's libgtest-dev .deb in .device/ (machines without apt);
# OpenBLAS is left out, so CPU matmul runs loom's own GEMM there.
# MODE=bench builds only the library and the Python extension and runs
# only the GPU benchmarks, printing each row as it is measured (for a short
# lease). MODE=python builds the same, then runs the Python GPU tests and
# the benchmarks, leaving out the C++ suite (for one call of a 15-minute
# lease).
set -uo pipefail
ARCH=${1:-90}
MODE=${MODE:-all}
OUT=${OUT:-/tmp/loom-device-check}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
step() { echo; echo "== $* ($(date +%T))"; }

step "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
nvcc --version | tail -2; g++ --version | head -1; $PY --version; nproc
if [ ! -e /usr/include/gtest/gtest.h ]; then
  for deb in .device/libgtest-dev_*.deb; do [ -e "$deb" ] && dpkg -x "$deb" /; done
fi

step "configure"
# The image's default g++ (a wrapper around /opt/gcc) finds only a static
# libstdc++: each shared object then carries its own copy, and the copies
# crash when loom formats an error. The system compiler links it shared.
CXX_FLAG=()
[ -x /usr/bin/g++ ] && CXX_FLAG=(--cxx /usr/bin/g++)
# --no-avx2: the AVX2/AVX-512 copies of every CPU kernel would double the
# build and change nothing that runs on the GPU.
$PY configure.py --build-dir build-gpu --cuda-arch "$ARCH" --without-openblas --no-avx2 --no-link-venv \
  "${CXX_FLAG[@]}" 2>&1 \
  | tee "$OUT/configure.txt" || exit 1

step "build"
start=$(date +%s)
TARGETS=all
[ "$MODE" != all ] && TARGETS="libloom python"
timeout ${BUILD_SECONDS:-420} ninja -C build-gpu $TARGETS > "$OUT/build.txt" 2>&1
rc=$?
tail -25 "$OUT/build.txt"
echo "build: rc=$rc in $(( $(date +%s) - start )) s"
[ $rc -eq 0 ] || exit 1
ldd build-gpu/lib/libloom.so | grep -q libstdc++ || echo "warning: libloom.so carries a static libstdc++"

export PYTHONPATH="$PWD/runtime/python:$PWD/build-gpu/python" LOOM_BUILD_DIR=build-gpu PYTHONUNBUFFERED=1

if [ "$MODE" = bench ]; then
  step "GPU benchmarks"
  $PY -m bench --only gpu --no-save --min-seconds 0.3 --progress 2>&1 | tee "$OUT/bench.txt"
  step "done"
  exit 0
fi

$PY -c "import loom as lm; g = lm._C.graph; print('GPUs', lm.num_gpus(), '| NVRTC', g.nvrtc_available(), g.nvrtc_supported_archs())"

if [ "$MODE" = all ]; then
  step "C++ tests (GPU cases included), C API test, C++ example"
  timeout 120 build-gpu/tests/loom_tests --gtest_brief=1 2>&1 | tee "$OUT/cpp.txt" | tail -40
  timeout 60 build-gpu/tests/c_api_test 2>&1 | tail -3
  timeout 60 build-gpu/examples/train_mlp 2>&1 | tail -3
fi

# CI runs the CPU tests; here only what touches the GPU: every generated
# suite's CPU-vs-CUDA check, test_gpu.py, and the other GPU cases by name.
step "pytest: the GPU tests (CPU vs CUDA for every op, test_gpu.py, GPU cases elsewhere)"
timeout ${PYTEST_SECONDS:-240} $PY -m pytest -q -n ${PYTEST_WORKERS:-8} -rfE -p no:cacheprovider --timeout 120 generated/tests tests/python \
  --ignore=tests/python/test_build.py -k "cuda or gpu" 2>&1 \
  | tee "$OUT/pytest.txt" | tail -60

step "cuDNN's chosen algorithms against float64 (default, then deterministic only)"
LOOM_CUDNN_LOG=1 timeout 60 $PY tools/cudnn_precision.py 2>&1 | tee "$OUT/cudnn_precision.txt"
LOOM_CUDNN_LOG=1 LOOM_CUDNN_DETERMINISTIC=1 timeout 60 $PY tools/cudnn_precision.py 2>&1 | tee -a "$OUT/cudnn_precision.txt"

step "GPU benchmarks"
timeout ${BENCH_SECONDS:-120} $PY -m bench --only gpu --no-save --progress ${BENCH_ARGS:-} 2>&1 | tee "$OUT/bench.txt"
step "done"
