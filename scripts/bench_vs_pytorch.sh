#!/usr/bin/env bash
# Side-by-side training throughput: dptrain against PyTorch eager on CPU (Debian's python3-torch),
# same model, same global batch, same threads, synthetic 1x28x28 data, alternating runs so both see
# the same machine; the median of the rounds (at least 5). Each round also prints the load average
# and dptrain's share of the GEMM peak measured in that run, and the OpenBLAS core dptrain ran. Both
# sides see the same environment: OPENBLAS_CORETYPE, where set, also reaches PyTorch's BLAS (Debian's
# libblas.so.3 alternative), and dptrain then keeps it instead of choosing its own.
# Usage: scripts/bench_vs_pytorch.sh [rounds=5] [batch=128] [threads=2] [model=cnn|resnet20]
#   cnn: configs/fashion_mnist.yaml; resnet20: configs/resnet20_fashion_mnist.yaml.
#   STEPS=N sets the timed steps per run (default 50 for cnn, 10 for resnet20).
#   REPRODUCIBLE=auto|true|false is dptrain's train.reproducible (default false: float sums, as
#   PyTorch sums; auto, a CPU run's own default, is bit-exact).
# Needs a built ./build/dptrain and `scripts/install-deps.sh --bench` (python3-torch).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}; batch=${2:-128}; threads=${3:-2}; model=${4:-cnn}
bin=${DPTRAIN_BIN:-./build/dptrain}
reproducible=${REPRODUCIBLE:-false}
case "$model" in
  cnn) config=configs/fashion_mnist.yaml; steps=${STEPS:-50} ;;
  resnet20) config=configs/resnet20_fashion_mnist.yaml; steps=${STEPS:-10} ;;
  *) echo "bench_vs_pytorch.sh: model must be cnn or resnet20, got '$model'" >&2; exit 2 ;;
esac
if ! [[ "$rounds" =~ ^[0-9]+$ ]] || ((rounds < 5)); then
  echo "bench_vs_pytorch.sh: rounds must be at least 5 (the median of fewer is not robust here), got '$rounds'" >&2
  exit 2
fi
field() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p"; }
text_field() { sed -n "s/.*\"$1\": \"\([^\"]*\)\".*/\1/p"; }

echo "model $model ($config), batch $batch, $threads threads, $steps steps per run, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')," \
  "OPENBLAS_CORETYPE ${OPENBLAS_CORETYPE:-not set}, train.reproducible $reproducible"
dp=(); pt=(); ratios=()
for ((i = 1; i <= rounds; i++)); do
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  d_json=$("$bin" bench train "$config" --set train.batch_size="$batch" --set threads="$threads" \
             --set train.reproducible="$reproducible" \
             --steps "$steps" --repeats 1 --json)
  d=$(field images_per_sec <<<"$d_json"); share=$(field peak_share <<<"$d_json"); peak=$(field peak_gflops <<<"$d_json")
  core="$(text_field blas_core <<<"$d_json") ($(text_field blas_core_reason <<<"$d_json"))"
  p=$(OMP_NUM_THREADS="$threads" /usr/bin/python3 scripts/bench_pytorch.py --model "$model" --batch "$batch" \
        --threads "$threads" --steps "$steps" | field images_per_sec)
  printf 'round %d: dptrain %7.0f img/s (%4.1f%% of GEMM peak %5.1f GFLOP/s, OpenBLAS %s)   pytorch %7.0f img/s   ratio %.2f   load %s\n' \
    "$i" "$d" "$(awk -v s="${share:-0}" 'BEGIN {print 100 * s}')" "${peak:-0}" "$core" "$p" \
    "$(awk -v a="$d" -v b="$p" 'BEGIN {print a / b}')" "$load"
  dp+=("$d"); pt+=("$p"); ratios+=("$(awk -v a="$d" -v b="$p" 'BEGIN {print a / b}')")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
md=$(median "${dp[@]}"); mp=$(median "${pt[@]}")
# The median of the rounds' ratios pairs each dptrain run with the PyTorch run beside it, so a burst
# of load that hits one round counts once.
printf 'median:  dptrain %7.0f img/s   pytorch %7.0f img/s   ratio of medians %.2f   median ratio of rounds %.2f\n' \
  "$md" "$mp" "$(awk -v a="$md" -v b="$mp" 'BEGIN {print a / b}')" "$(median "${ratios[@]}")"
echo "($model, batch $batch, $threads threads, $rounds rounds; load now $(cut -d' ' -f1-3 /proc/loadavg))"
