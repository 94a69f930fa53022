#!/usr/bin/env bash
# Reads the output of a GoogleTest run of the GPU tests on a machine WITH a GPU and fails when a
# test skipped for any reason but needing no GPU. On a GPU machine a skip normally means that the
# GPU was not usable by this build; only the tests that check the behaviour without a GPU (their
# reason starts with "a CUDA device is visible:") are expected to skip there.
#
# Usage: tests/gpu/check_skips.sh GTEST_OUTPUT_FILE
# Prints each skip and its reason; exits 0 when every skip is expected, 1 otherwise, 2 on misuse.
set -euo pipefail
[[ $# -eq 1 && -r "$1" ]] || { echo "usage: $0 GTEST_OUTPUT_FILE (a readable file)" >&2; exit 2; }

awk '
  /^\[ RUN      \] / { reason = ""; grab = 0; next }
  /: Skipped$/ { grab = 1; next }
  grab && !/^\[  SKIPPED \]/ { reason = $0; grab = 0; next }
  /^\[  SKIPPED \] [^ ]+ \([0-9]+ ms\)$/ {
    if (reason ~ /^a CUDA device is visible:/) { printf "expected skip (needs no GPU): %s: %s\n", $4, reason }
    else { printf "UNEXPECTED skip on a GPU machine: %s: %s\n", $4, reason; bad++ }
    total++; grab = 0
  }
  END {
    printf "check_skips: %d skipped, %d unexpected\n", total, bad
    exit bad > 0 ? 1 : 0
  }
' "$1"
