#!/usr/bin/env bash
# The GPU check: one command for a lent GPU machine (nvcc, CMake, ninja, Python with PyTorch and the
# pip CUDA libraries; no apt, no network). It unpacks the Debian libraries that
# tests/gpu/prepare_device.sh packed into device-deps/, builds dptrain and the GPU tests for sm_90
# against them and the pip cuDNN, cuBLAS and NCCL, runs every GPU test against the CPU oracle, then
# benchmarks training images/s of the demo CNN, ResNet-50 and ResNet-20 at batch 128 and 1024 in
# float32, tf32 and bf16, each beside PyTorch eager on the same model, batch and precision, and
# prints one summary table.
#
# Usage: tests/gpu/device_check.sh OUTDIR
# Writes OUTDIR/summary.txt (phases, the table), OUTDIR/results.jsonl (every measurement) and
# OUTDIR/logs.tar.gz (one log per phase). Exits 0 when every phase passed and every target was met.
# Environment: BUDGET_SECONDS (default 450) for the whole check; PYTHON (default: /opt/torch/.venv's,
# else python3); DEPS (default device-deps/debian-deps.tar.xz); WORK (default build-device/);
# CUDA_ARCH (default 90-real); BUILD_SECONDS (default 300) for the build; BENCH_MODELS (default
# "fashion_mnist resnet50 resnet20").
# Every phase has a timeout; a failing phase is reported and the phases that do not need it still run.
set -uo pipefail
set -m
root=$(cd "$(dirname "$0")/../.." && pwd)
[[ $# -eq 1 ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
mkdir -p "$1" && outdir=$(cd "$1" && pwd)
work=${WORK:-$root/build-device}
deps_archive=${DEPS:-$root/device-deps/debian-deps.tar.xz}
budget=${BUDGET_SECONDS:-450}
logs="$work/logs"
rm -rf "$logs" && mkdir -p "$logs"
results="$outdir/results.jsonl"
: > "$results"
phases=()   # "name: status (seconds)" per phase, for the summary
status=0
n=0

python=${PYTHON:-}
if [[ -z $python ]]; then
  python=/opt/torch/.venv/bin/python3
  [[ -x $python ]] || python=$(command -v python3 || echo python3)
fi

left() { echo $((budget - SECONDS)); }

# phase NAME TIMEOUT COMMAND...: runs COMMAND with its output in logs/NN-NAME.log, at most TIMEOUT
# seconds and never past the budget; records and returns its exit status.
phase() {
  local name=$1 limit=$2 rc=0 t0=$SECONDS
  shift 2
  n=$((n + 1))
  local log="$logs/$(printf %02d "$n")-$name.log"
  ((limit > $(left))) && limit=$(left)
  if ((limit <= 0)); then
    phases+=("$name: not run (time budget spent)"); status=1
    echo "== $name: not run (time budget spent)"
    return 124
  fi
  echo "== $name (at most ${limit}s)"
  # A job of its own (set -m: its own process group), so that a timeout stops all it started.
  "$@" > "$log" 2>&1 &
  local pid=$! timed_out=no
  while kill -0 "$pid" 2> /dev/null; do
    if ((SECONDS - t0 >= limit)) && [[ $timed_out == no ]]; then
      timed_out=yes
      kill -TERM -- "-$pid" 2> /dev/null; sleep 5; kill -KILL -- "-$pid" 2> /dev/null
    fi
    sleep 0.5
  done
  wait "$pid" 2> /dev/null || rc=$?
  local took=$((SECONDS - t0)) verdict=ok
  if [[ $timed_out == yes ]]; then verdict="TIMED OUT after ${limit}s"; rc=124
  elif ((rc != 0)); then verdict="FAILED (exit $rc)"; fi
  [[ $verdict == ok ]] || status=1
  phases+=("$name: $verdict (${took}s)")
  echo "   $verdict in ${took}s; last lines of $(basename "$log"):"
  tail -n 5 "$log" | sed 's/^/   | /'
  return $rc
}

skip() {  # skip NAME WHY
  phases+=("$1: skipped: $2")
  echo "== $1: skipped: $2"
}

finish() {
  {
    echo "dptrain GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), ${SECONDS}s of a ${budget}s budget"
    echo "machine: ${gpu_names:-no GPU visible}"
    echo
    printf '%s\n' "${phases[@]}"
    echo
    if grep -q '"framework"' "$results"; then
      LD_LIBRARY_PATH=${system_ld_path:-} "$python" "$root/tests/gpu/bench_torch.py" table "$results" || status=1
    else
      echo "no benchmark results"
    fi
  } > "$outdir/summary.txt" 2>&1
  echo
  cat "$outdir/summary.txt"
  tar -C "$work" -czf "$outdir/logs.tar.gz" logs
  echo "device_check: wrote $outdir/summary.txt, results.jsonl, logs.tar.gz; exit $status"
  exit $status
}
trap finish EXIT

# --- the machine ---------------------------------------------------------------------------------
gpu_count=0
gpu_names=""
if command -v nvidia-smi > /dev/null && nvidia-smi -L > "$logs/gpus.txt" 2>&1; then
  gpu_count=$(grep -c '^GPU ' "$logs/gpus.txt")
  gpu_names=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2> /dev/null | paste -sd';')
fi
no_gpu_why="nvidia-smi $(command -v nvidia-smi > /dev/null && echo "lists $gpu_count GPUs: $(head -c 200 "$logs/gpus.txt")" || echo "is not installed")"
if ((gpu_count == 0)); then  # without nvidia-smi, ask PyTorch
  torch_gpus=$("$python" -c 'import torch; print(torch.cuda.device_count())' 2> /dev/null | tail -n 1)
  if [[ $torch_gpus =~ ^[1-9][0-9]*$ ]]; then
    gpu_count=$torch_gpus
    gpu_names=$("$python" -c 'import torch; print(";".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())))' 2> /dev/null)
  else
    no_gpu_why+="; PyTorch sees ${torch_gpus:-no} GPUs"
  fi
fi
machine() {
  echo "GPUs: $gpu_count ($gpu_names)"; nvidia-smi 2>&1 | head -20
  echo "cores: $(nproc)"; grep -m1 'model name' /proc/cpuinfo; free -g | head -2
  cat /etc/os-release 2> /dev/null | head -3; ldd --version | head -1
  command -v nvcc && nvcc --version | tail -2
  c++ --version | head -1; cmake --version | head -1; ninja --version
  "$python" -c 'import sys, torch; print(sys.executable, "torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())'
}
phase machine 60 machine

# --- the build -----------------------------------------------------------------------------------
deps="$work/deps"
unpack() {
  [[ -f $deps_archive ]] || { echo "$deps_archive is missing: run tests/gpu/prepare_device.sh on Debian 12 and carry device-deps/"; return 1; }
  rm -rf "$deps" && mkdir -p "$work" && tar -C "$work" -xJf "$deps_archive" && du -sh "$deps"
}
phase unpack-deps 60 unpack
lib="$deps/usr/lib/x86_64-linux-gnu"

# The CUDA libraries: from the pip packages beside PyTorch where they are, else from the toolkit
# (CUDA_ROOT, default: nvcc's). Sets cmake_cuda (CMake arguments) and cuda_libdirs.
nvcc_bin=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
cuda_root=${CUDA_ROOT:-$(dirname "$(dirname "$(readlink -f "$nvcc_bin")")")}
site=$("$python" -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))' 2> /dev/null || true)
first() { [[ -d $1 ]] && find "$@" 2> /dev/null | sort | head -1; }
find_cuda_libs() {
  local pip="${site:+$site/nvidia}"
  echo "nvcc: $nvcc_bin (toolkit $cuda_root); pip CUDA packages: ${pip:-none}"
  cudnn_h=$(first "$pip" -name cudnn.h); cudnn_lib=$(first "$pip" -name 'libcudnn.so.[0-9]*')
  nccl_h=$(first "$pip" -name nccl.h); nccl_lib=$(first "$pip" -name 'libnccl.so.[0-9]*')
  cublas_lib=$(first "$pip" -name 'libcublas.so.[0-9]*'); cublaslt_lib=$(first "$pip" -name 'libcublasLt.so.[0-9]*')
  nvrtc_lib=$(first "$pip" -name 'libnvrtc.so.[0-9]*')
  # Where pip has none, the toolkit's (a CUDA install such as this repository's build machines).
  [[ -n $cudnn_h ]] || cudnn_h=$(first "$cuda_root/include" -name cudnn.h)
  [[ -n $cudnn_lib ]] || cudnn_lib=$(first "$cuda_root/lib64/" -name 'libcudnn.so')
  [[ -n $nccl_h ]] || nccl_h=$(first "$cuda_root/include" -name nccl.h)
  [[ -n $nccl_lib ]] || nccl_lib=$(first "$cuda_root/lib64/" -name 'libnccl.so')
  cmake_cuda=(-DCMAKE_CUDA_COMPILER="$nvcc_bin" -DDPTRAIN_CUDA_ROOT="$cuda_root"
    -DDPTRAIN_CUDNN_INCLUDE="$(dirname "$cudnn_h")" -DDPTRAIN_CUDNN_LIB="$cudnn_lib"
    -DDPTRAIN_NCCL_INCLUDE="$(dirname "$nccl_h")" -DDPTRAIN_NCCL_LIB="$nccl_lib")
  [[ -n $cublas_lib ]] && cmake_cuda+=(-DCUDA_cublas_LIBRARY="$cublas_lib")
  [[ -n $cublaslt_lib ]] && cmake_cuda+=(-DCUDA_cublasLt_LIBRARY="$cublaslt_lib")
  # The CUDA runtime: the toolkit's, or pip's where nvcc came without one.
  local cudart_lib=""
  if ! compgen -G "$cuda_root/lib*/libcudart.so" > /dev/null && ! compgen -G "$cuda_root/targets/*/lib/libcudart.so" > /dev/null; then
    cudart_lib=$(first "$pip" -name 'libcudart.so.[0-9]*')
    [[ -n $cudart_lib ]] && cmake_cuda+=(-DCUDA_cudart_LIBRARY="$cudart_lib")
  fi
  cuda_libdirs=""
  for f in "$cudnn_lib" "$nccl_lib" "$cublas_lib" "$cublaslt_lib" "$nvrtc_lib" "$cudart_lib"; do
    [[ -n $f ]] && cuda_libdirs="${cuda_libdirs:+$cuda_libdirs:}$(dirname "$(readlink -f "$f")")"
  done
  printf 'cudnn.h %s\nlibcudnn %s\nnccl.h %s\nlibnccl %s\nlibcublas %s\nlibcublasLt %s\nlibnvrtc %s\nlibcudart %s\n' \
    "$cudnn_h" "$cudnn_lib" "$nccl_h" "$nccl_lib" "${cublas_lib:-toolkit}" "${cublaslt_lib:-toolkit}" \
    "${nvrtc_lib:-toolkit}" "${cudart_lib:-toolkit}"
  [[ -n $cudnn_h && -n $cudnn_lib && -n $nccl_h && -n $nccl_lib ]] || { echo "cuDNN or NCCL not found"; return 1; }
}
find_cuda_libs > "$logs/cuda-libs.txt" 2>&1 || status=1
cat "$logs/cuda-libs.txt"
system_ld_path=${LD_LIBRARY_PATH:-}  # PyTorch runs with the machine's own libraries
# What the built programs load: the carried libraries (HDF5 and Open MPI in their own folders),
# then the CUDA libraries. ld also reads this to follow the carried libraries' own dependencies.
export LD_LIBRARY_PATH="$lib:$lib/hdf5/serial:$lib/openmpi/lib:$lib/openblas-openmp${cuda_libdirs:+:$cuda_libdirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

build="$work/build"
configure() {
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDPTRAIN_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90-real}" "${cmake_cuda[@]}" \
    -DCMAKE_PREFIX_PATH="$deps/usr" -DCMAKE_LIBRARY_PATH="$lib" \
    -DCMAKE_INCLUDE_PATH="$deps/usr/include;$deps/usr/include/x86_64-linux-gnu" \
    -DCMAKE_CXX_FLAGS="-isystem $deps/usr/include/x86_64-linux-gnu" \
    -Dyaml-cpp_DIR="$lib/cmake/yaml-cpp" -DGTest_DIR="$lib/cmake/GTest" -DCLI11_DIR="$deps/usr/share/cmake/CLI11" \
    -Dnlohmann_json_DIR="$deps/usr/share/cmake/nlohmann_json" \
    -DZLIB_ROOT="$deps/usr" -DHDF5_ROOT="$lib/hdf5/serial" \
    -DMPI_SKIP_COMPILER_WRAPPER=ON -DMPI_C_HEADER_DIR="$lib/openmpi/include" -DMPI_C_LIB_NAMES=mpi \
    -DMPI_mpi_LIBRARY="$lib/openmpi/lib/libmpi.so" \
    -DMPIEXEC_EXECUTABLE="$(command -v mpirun || echo /bin/false)" -DMPIEXEC_PROGRAM="$(command -v mpirun || echo /bin/false)" \
    -DOPENBLAS_LIB="$lib/openblas-openmp/libopenblas.so" -DOPENBLAS_INCLUDE="$deps/usr/include/x86_64-linux-gnu/openblas-openmp"
}
# Every library the programs load is found, and comes from the carried folder, the CUDA libraries,
# or the machine's C library and compiler runtime.
check_libraries() {
  local bad=0 name path
  while read -r name path; do
    if [[ $path == "not" ]]; then echo "NOT FOUND: $name"; bad=1
    elif [[ $path == "$deps"/* ]]; then echo "carried: $name"
    elif [[ $name =~ ^lib(cuda|cudart|cublas|cublasLt|cudnn|nccl|nvrtc|nvJitLink)[.-] ]]; then echo "CUDA:    $name => $path"
    elif [[ $name =~ ^(libc|libm|libdl|libpthread|librt|libresolv|libstdc\+\+|libgcc_s|libgomp)\.so ]]; then echo "machine: $name => $path"
    else echo "NOT CARRIED: $name => $path"; bad=1; fi
  done < <(ldd "$build/dptrain" "$build/tests/dptrain_gpu_tests" | awk '/=>/ {print $1, $3}' | sort -u)
  return $bad
}
targets=(dptrain dptrain_gpu_tests)
((gpu_count >= 2)) && targets+=(dptrain_gpu_mpi_tests)
built=no
if phase configure 90 configure && phase build "${BUILD_SECONDS:-300}" cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"; then
  built=yes
  phase libraries 30 check_libraries
fi

# --- on the GPU ----------------------------------------------------------------------------------
if ((gpu_count == 0)); then
  phases+=("gpu-tests: FAILED: no GPU visible: $no_gpu_why; the GPU tests and benchmarks did not run")
  echo "== gpu-tests: no GPU visible: $no_gpu_why; stopping before the GPU tests and benchmarks"
  status=1
  exit
elif [[ $built == no ]]; then
  skip gpu-tests "the build failed"
else
  gpu_tests() {
    "$build/tests/dptrain_gpu_tests" > "$logs/gpu-tests-output.txt" 2>&1
    local rc=$?
    grep -E '^\[ *(OK|FAILED|SKIPPED|PASSED) *\]' "$logs/gpu-tests-output.txt" | tail -n 40
    "$root/tests/gpu/check_skips.sh" "$logs/gpu-tests-output.txt" || rc=1
    return $rc
  }
  phase gpu-tests 150 gpu_tests
fi
if ((gpu_count >= 2)) && command -v mpirun > /dev/null && [[ $built == yes ]]; then
  phase gpu-mpi-tests 60 env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    mpirun --oversubscribe --bind-to none -np 2 "$build/tests/dptrain_gpu_mpi_tests"
else
  skip gpu-mpi-tests "the two-rank NCCL and staging tests need 2 GPUs and mpirun (this machine: $gpu_count GPU(s), mpirun $(command -v mpirun > /dev/null && echo present || echo absent: the Open MPI launcher is not carried))"
fi

# --- benchmarks: each model in dptrain, then in PyTorch, cases in the order of the table --------
# model config sample-shape classes steps(128) steps(1024)
bench_spec() {
  case $1 in
    fashion_mnist) echo "configs/fashion_mnist.yaml [1,28,28] 10 40 10" ;;
    resnet20) echo "configs/resnet20_fashion_mnist.yaml [1,28,28] 10 20 6" ;;
    resnet50) echo "configs/resnet50_imagefolder.yaml [3,224,224] 1000 8 3" ;;
  esac
}
bench_dptrain() {  # MODEL: every batch and precision, one JSON line per repeat into results
  local model=$1 config shape classes s128 s1024
  read -r config shape classes s128 s1024 <<< "$(bench_spec "$model")"
  local rc=0
  for batch in 128 1024; do
    for precision in float32 tf32 bf16; do
      local steps=$s128
      ((batch == 1024)) && steps=$s1024
      echo "-- $model batch $batch $precision: $steps steps per repeat"
      local out
      out=$(timeout 60 "$build/dptrain" bench train "$root/$config" --json --steps "$steps" --warmup 1 --repeats 2 \
        --set device=cuda --set precision="$precision" --set train.batch_size="$batch" \
        --set "data={type: synthetic, train_samples: $((batch * steps)), test_samples: 1, shape: $shape, classes: $classes}" 2>&1)
      local case_rc=$?
      echo "$out"
      if ((case_rc == 0)) && grep -q '^{' <<< "$out"; then
        grep '^{' <<< "$out" | sed "s/^{/{\"model\": \"$model\", /" >> "$results"
      else
        rc=1
        local why
        why=$(grep -v '^{' <<< "$out" | tail -n 1 | tr -d '"\\' | cut -c1-200)
        printf '{"framework": "dptrain", "model": "%s", "batch": %d, "precision": "%s", "error": "exit %d: %s"}\n' \
          "$model" "$batch" "$precision" "$case_rc" "$why" >> "$results"
      fi
    done
  done
  return $rc
}
bench_pytorch() {  # MODEL
  local model=$1 config shape classes s128 s1024
  read -r config shape classes s128 s1024 <<< "$(bench_spec "$model")"
  # As many timed steps as dptrain's two repeats, after as many warm-up steps as its warm-up epoch.
  LD_LIBRARY_PATH=$system_ld_path "$python" "$root/tests/gpu/bench_torch.py" bench --model "$model" --batches 128,1024 \
    --steps "$((2 * s128)),$((2 * s1024))" --warmup "$s1024" --budget-seconds 90 | tee -a "$results"
}
for model in ${BENCH_MODELS:-fashion_mnist resnet50 resnet20}; do
  if [[ $built == yes ]]; then
    phase "bench-dptrain-$model" 150 bench_dptrain "$model"
  else
    skip "bench-dptrain-$model" "the build failed"
  fi
  phase "bench-pytorch-$model" 120 bench_pytorch "$model"
done
