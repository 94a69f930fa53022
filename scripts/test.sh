#!/usr/bin/env bash
# Installs the dependencies, builds dptrain with its tests in build-test/, and runs them with ctest.
# Usage: scripts/test.sh [extra ctest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release -DDPTRAIN_FAULT_INJECTION=ON
cmake --build build-test -j "$(nproc)"
cd build-test
ctest --output-on-failure --timeout 600 "$@"
