#!/usr/bin/env bash
# Installs the dependencies, then builds and tests dptrain twice:
#   build-test/  Release (CUDA where found, test-only fault hooks): every test, ctest, as many at a time as
#                cores, except the end-to-end, MPI and Slurm tests, which run alone (RUN_SERIAL, tests/CMakeLists.txt)
#   build-san/   clang with ASan+UBSan, CPU only (cmake/sanitize.cmake): the unit and library tests
#                (not tests/e2e, tests/mpi, tests/slurm, TorchvisionParity) and each fuzz target of tests/fuzz/
#                from its seed corpus, with a fixed seed and number of inputs (tests/fuzz/CMakeLists.txt)
# Usage: scripts/test.sh [extra ctest arguments, given to both ctest runs]
# DPTRAIN_TEST_SANITIZE=0 leaves the sanitizer build out.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

scripts/install-deps.sh
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release -DDPTRAIN_FAULT_INJECTION=ON
cmake --build build-test -j "$jobs"
status=0
(cd build-test && ctest --output-on-failure --timeout 600 -j "$jobs" "$@") || status=1

if [[ "${DPTRAIN_TEST_SANITIZE:-1}" != 0 ]]; then
  CC=clang CXX=clang++ cmake -S . -B build-san -DCMAKE_BUILD_TYPE=Release -DDPTRAIN_SANITIZE=ON -DDPTRAIN_CUDA=OFF \
    -DDPTRAIN_FAULT_INJECTION=ON
  cmake --build build-san -j "$jobs"
  # TorchvisionParity (ResNet-18 and -50 forward and backward, 1.6 and 4 minutes under ASan) is left to
  # the Release run: the layers it strings together are sanitized by their own tests.
  (cd build-san && ctest --output-on-failure --timeout 600 -j "$jobs" -E '^TorchvisionParity\.' "$@") || status=1
fi
exit "$status"
