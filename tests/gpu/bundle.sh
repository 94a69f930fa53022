#!/usr/bin/env bash
# Collects a CUDA build of dptrain into one folder that runs on a GPU machine lacking the build's
# libraries (yaml-cpp, HDF5, Open MPI, OpenBLAS, ...): the executables, every shared library
# `ldd` lists for them except the CUDA driver (libcuda.so, which comes with the GPU's driver) and
# glibc's own libraries, the configs, and tests/gpu/run.sh.
#
# Usage: tests/gpu/bundle.sh [BUILD_DIR=build-cuda] [OUT_DIR=dptrain-gpu-bundle]
# Then, on the GPU machine: OUT_DIR/tests/gpu/run.sh --bundle OUT_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build-cuda}" && pwd)
out=${2:-dptrain-gpu-bundle}

bins=("$build/dptrain" "$build/tests/dptrain_gpu_tests" "$build/tests/dptrain_gpu_mpi_tests")
for b in "${bins[@]}"; do
  [[ -x "$b" ]] || { echo "bundle: $b is missing: build it first (cmake --build $build --target $(basename "$b"))" >&2; exit 1; }
done

mkdir -p "$out/bin" "$out/lib" "$out/tests/gpu"
cp "${bins[@]}" "$out/bin/"
cp -r "$root/configs" "$out/"
cp "$root/tests/gpu/run.sh" "$out/tests/gpu/"

# The driver (libcuda) must match the machine's kernel module; glibc must match its loader.
skip='^(libcuda\.so|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|ld-linux|linux-vdso|libresolv\.so|libutil\.so)'
count=0
for b in "${bins[@]}"; do
  while read -r name path; do
    [[ -n "$path" && -f "$path" ]] || continue
    if [[ "$name" =~ $skip ]]; then continue; fi
    if [[ ! -e "$out/lib/$name" ]]; then
      cp -L "$path" "$out/lib/$name"
      count=$((count + 1))
    fi
  done < <(ldd "$b" | awk '/=>/ {print $1, $3}')
done
# cuDNN 9 loads its parts (ops, cnn, engines, heuristics) with dlopen, and its runtime-compiled
# engines need NVRTC: ldd does not list them.
cudnn_dir=$(ldd "$build/dptrain" | awk '/libcudnn\.so/ {print $3}' | xargs dirname)
for part in "$cudnn_dir"/libcudnn_*.so.9 "$cudnn_dir"/libnvrtc*.so.13*; do
  [[ -f "$part" ]] || continue
  cp -L "$part" "$out/lib/" && count=$((count + 1))
done
echo "bundle: $out: ${#bins[@]} executables, $count libraries ($(du -sh "$out" | cut -f1))"
echo "bundle: on the GPU machine run: $out/tests/gpu/run.sh --bundle $out"
