#!/usr/bin/env bash
# Side-by-side training throughput: dptrain against PyTorch eager on CPU (Debian's python3-torch),
# same reference model, same global batch, same threads, alternating runs so both see the same machine.
# Usage: scripts/bench_vs_pytorch.sh [rounds=5] [batch=128] [threads=2]
# Needs a built ./build/dptrain and `scripts/install-deps.sh --bench` (python3-torch).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}; batch=${2:-128}; threads=${3:-2}
bin=${DPTRAIN_BIN:-./build/dptrain}
steps=50

dp=(); pt=()
for ((i = 1; i <= rounds; i++)); do
  d=$("$bin" bench train configs/fashion_mnist.yaml --set train.batch_size="$batch" --set threads="$threads" \
        --steps "$steps" --repeats 1 --json | sed -n 's/.*"images_per_sec": \([0-9.]*\).*/\1/p')
  p=$(OMP_NUM_THREADS="$threads" /usr/bin/python3 scripts/bench_pytorch.py --batch "$batch" --threads "$threads" \
        --steps "$steps" | sed -n 's/.*"images_per_sec": \([0-9.]*\).*/\1/p')
  printf 'round %d: dptrain %8.0f img/s   pytorch %8.0f img/s   ratio %.2f\n' "$i" "$d" "$p" "$(awk -v a="$d" -v b="$p" 'BEGIN {print a / b}')"
  dp+=("$d"); pt+=("$p")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
md=$(median "${dp[@]}"); mp=$(median "${pt[@]}")
printf 'median:  dptrain %8.0f img/s   pytorch %8.0f img/s   ratio %.2f  (batch %s, %s threads)\n' \
  "$md" "$mp" "$(awk -v a="$md" -v b="$mp" 'BEGIN {print a / b}')" "$batch" "$threads"
