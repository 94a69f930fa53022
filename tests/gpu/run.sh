#!/usr/bin/env bash
# Builds (or takes a prebuilt tree) and runs the GPU tests and the GPU benchmark on a GPU machine
# that has the build's dependencies installed (scripts/install-deps.sh). For a machine without them,
# see tests/gpu/prepare_device.sh and tests/gpu/device_check.sh.
#
# Usage:
#   tests/gpu/run.sh                      # configure and build build-cuda/ with DPTRAIN_CUDA=ON, then run
#   tests/gpu/run.sh --build DIR          # use the CUDA build in DIR
#
# Runs: the GPU unit tests (failing if a test skipped for any reason but needing no GPU: on a GPU
# machine such a skip means the GPU was not usable; tests/gpu/check_skips.sh tells them apart),
# the two-rank NCCL test when mpirun and two GPUs are there, and
# `dptrain bench train configs/fashion_mnist.yaml` on the GPU at global batch 128 and 1024, once
# per precision (each run's header and JSON name the precision in effect).
# Environment: PRECISIONS (default "float32 tf32 bf16"), STEPS (default 50) steps per repeat.
# Each benchmark run sets its precision with --set precision=... (docs/gpus.md, "Precision").
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir="$root/build-cuda"
case "${1:-}" in
  --build) dir=$(cd "$2" && pwd) ;;
  "") ;;
  *) echo "usage: $0 [--build DIR]" >&2; exit 2 ;;
esac

if [[ -z "${1:-}" ]]; then
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DDPTRAIN_CUDA=ON
  cmake --build "$dir" -j "$(nproc)" --target dptrain dptrain_gpu_tests dptrain_gpu_mpi_tests
fi
bin="$dir"; tests="$dir/tests"

command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
"$bin/dptrain" --version

echo "== GPU unit tests"
log=$(mktemp)
# The tests choose their precision themselves (float32, and bf16 where they say so).
"$tests/dptrain_gpu_tests" 2>&1 | tee "$log"
if ! "$root/tests/gpu/check_skips.sh" "$log"; then
  echo "run.sh: GPU tests were skipped: this machine's GPU is not usable by this build (see the reasons above)" >&2
  exit 1
fi

echo "== Multi-rank all-reduce (NCCL and host staging)"
gpus=$(nvidia-smi -L 2> /dev/null | wc -l || echo 0)
if command -v mpirun > /dev/null && [[ $gpus -ge 2 ]]; then
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    mpirun --oversubscribe --bind-to none -np 2 "$tests/dptrain_gpu_mpi_tests"
else
  echo "skipped: needs mpirun and at least 2 GPUs (have: mpirun $(command -v mpirun > /dev/null && echo yes || echo no), $gpus GPUs)"
fi

echo "== Benchmark: reference model (configs/fashion_mnist.yaml) on the GPU"
# Synthetic data of Fashion-MNIST's shape, so that the data set need not be installed.
cd "$root"
for precision in ${PRECISIONS:-float32 tf32 bf16}; do
  for batch in 128 1024; do
    "$bin/dptrain" bench train configs/fashion_mnist.yaml --set device=cuda --set precision="$precision" \
      --set train.batch_size="$batch" \
      --set 'data={type: synthetic, train_samples: 1024, test_samples: 1, shape: [1, 28, 28], classes: 10}' \
      --steps "${STEPS:-50}" --repeats 3
  done
done
