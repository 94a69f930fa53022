#!/usr/bin/env bash
# Checks tests/gpu/check_skips.sh on GoogleTest output as a GPU machine prints it: a skip of a test
# that needs no GPU passes, any other skip (with or without a reason) fails, a run without skips passes.
set -euo pipefail
check="$(cd "$(dirname "$0")" && pwd)/check_skips.sh"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failures=0
expect() {  # expect RC NAME: runs the check on $dir/NAME.log and compares its exit status
  local rc=0
  "$check" "$dir/$2.log" > "$dir/$2.out" || rc=$?
  if [[ $rc -ne $1 ]]; then
    echo "FAIL: $2: exit $rc, expected $1"; cat "$dir/$2.out"; failures=$((failures + 1))
  else
    echo "ok: $2 (exit $rc)"
  fi
}

cat > "$dir/needs-no-gpu.log" <<'LOG'
[ RUN      ] DeviceChoice.CudaWithoutAGpuIsAClearUsageError
tests/gpu/test_gpu_runtime.cpp:31: Skipped
a CUDA device is visible: the no-GPU error cannot be provoked

[  SKIPPED ] DeviceChoice.CudaWithoutAGpuIsAClearUsageError (0 ms)
[ RUN      ] CudaLayers.Conv2dMatchesCpu
[       OK ] CudaLayers.Conv2dMatchesCpu (12 ms)
[  PASSED  ] 1 test.
[  SKIPPED ] 1 test, listed below:
[  SKIPPED ] DeviceChoice.CudaWithoutAGpuIsAClearUsageError
LOG
expect 0 needs-no-gpu

cat > "$dir/gpu-unusable.log" <<'LOG'
[ RUN      ] DeviceChoice.CudaWithoutAGpuIsAClearUsageError
tests/gpu/test_gpu_runtime.cpp:31: Skipped
a CUDA device is visible: the no-GPU error cannot be provoked

[  SKIPPED ] DeviceChoice.CudaWithoutAGpuIsAClearUsageError (0 ms)
[ RUN      ] CudaLayers.Conv2dMatchesCpu
tests/gpu/gpu_test_util.h:44: Skipped
no CUDA device visible: cudaGetDeviceCount: no CUDA-capable device is detected

[  SKIPPED ] CudaLayers.Conv2dMatchesCpu (0 ms)
LOG
expect 1 gpu-unusable
grep -q "UNEXPECTED skip on a GPU machine: CudaLayers.Conv2dMatchesCpu" "$dir/gpu-unusable.out" ||
  { echo "FAIL: gpu-unusable: the unexpected skip is not named"; failures=$((failures + 1)); }

cat > "$dir/no-reason.log" <<'LOG'
[ RUN      ] CudaLayers.Silent
tests/gpu/test_gpu_layers.cpp:10: Skipped

[  SKIPPED ] CudaLayers.Silent (0 ms)
LOG
expect 1 no-reason

printf '[ RUN      ] A.B\n[       OK ] A.B (1 ms)\n[  PASSED  ] 1 test.\n' > "$dir/no-skips.log"
expect 0 no-skips

[[ $failures -eq 0 ]] || { echo "$failures check(s) failed"; exit 1; }
echo "all checks passed"
