#!/usr/bin/env bash
# Installs everything dptrain needs to build, test and train on a fresh Debian 12 machine.
# Usage: scripts/install-deps.sh [--bench] [--slurm]   (--bench also installs PyTorch for the comparison
# benchmark; --slurm also installs Slurm and munge for tests/slurm/, which otherwise install them themselves)
set -euo pipefail

packages=(
  build-essential cmake pkg-config ninja-build
  clang libclang-rt-14-dev libomp-14-dev  # the sanitizer build and its fuzz targets (ASan, UBSan, libFuzzer; cmake/sanitize.cmake)
  libyaml-cpp-dev          # configs
  libhdf5-dev hdf5-tools   # checkpoints, h5dump for tests
  libopenmpi-dev openmpi-bin
  libopenblas-openmp-dev   # GEMM for conv and dense layers (OpenMP build: single-threaded inside our parallel regions)
  libcli11-dev             # command line
  nlohmann-json3-dev       # reading metrics files back (dptrain plot; header-only)
  libgtest-dev libgmock-dev libbenchmark-dev
  zlib1g-dev               # gzipped IDX files
  libpng-dev libjpeg-dev   # image-folder data sets
  dataset-fashion-mnist    # /usr/share/datasets/fashion-mnist
  gnuplot-nox              # dptrain plot, and the scaling benchmark's plot (cluster/scaling/scaling.sh)
  python3-torchvision python3-h5py python3-yaml  # torchvision parity and fine-tuning tests, scripts/convert_torchvision.py
  libonnx-dev libprotobuf-dev                     # dptrain export: ONNX's protobuf classes and checker
  python3-onnx python3-opencv                     # the export tests: onnx.checker and OpenCV's DNN module run the files
  libdnnl-dev                                     # int8 inference of quantized models (oneDNN)
)
for arg in "$@"; do
  case "$arg" in
    --bench) packages+=(python3-torch) ;;
    --slurm) packages+=(slurm-wlm munge) ;;  # the Slurm job-script tests (tests/slurm/)
    *) echo "install-deps: unknown option $arg (expected --bench or --slurm)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
