#!/usr/bin/env bash
# Checks the PyTorch side of the GPU benchmark here, without a GPU: each PyTorch model has exactly
# the parameter count that `dptrain train CONFIG --dry-run` reports for the config it stands for,
# the benchmark's CPU mode trains each for a step, and the summary table joins both frameworks.
# Usage: tests/gpu/test_bench_torch.sh DPTRAIN_BINARY [PYTHON=/usr/bin/python3]
# Exit 77 (skipped) when PYTHON lacks torch or torchvision.
set -euo pipefail
dptrain=$1
python=${2:-/usr/bin/python3}
root=$(cd "$(dirname "$0")/../.." && pwd)
script="$root/tests/gpu/bench_torch.py"
"$python" -c 'import torch, torchvision' 2> /dev/null || { echo "skipped: $python lacks torch or torchvision"; exit 77; }
cd "$root"
failures=0

# model, config, synthetic data of the config's sample shape and classes
while read -r model config shape classes; do
  want=$("$dptrain" train "$config" --dry-run --set device=cpu \
    --set "data={type: synthetic, train_samples: 8, test_samples: 1, shape: $shape, classes: $classes}" |
    sed -n 's/^ *total parameters: \([0-9]*\)$/\1/p')
  got=$("$python" "$script" params "$model")
  if [[ -n "$want" && "$got" == "$want" ]]; then
    echo "ok: $model: $got parameters, as $config"
  else
    echo "FAIL: $model: PyTorch has ${got:-?} parameters, dptrain train $config --dry-run says ${want:-nothing}"
    failures=$((failures + 1))
  fi
done << 'MODELS'
fashion_mnist configs/fashion_mnist.yaml [1,28,28] 10
resnet20 configs/resnet20_fashion_mnist.yaml [1,28,28] 10
resnet50 configs/resnet50_imagefolder.yaml [3,224,224] 1000
MODELS

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for model in fashion_mnist resnet20 resnet50; do
  batch=4
  [[ $model == resnet50 ]] && batch=2
  "$python" "$script" bench --model "$model" --device cpu --batches "$batch" --precisions float32 --steps 1 --warmup 1 \
    >> "$results"
done
if [[ $(grep -c '"images_per_sec"' "$results") -ne 3 ]]; then
  echo "FAIL: the CPU mode did not train every model:"; cat "$results"; failures=$((failures + 1))
else
  echo "ok: the CPU mode trained every model for a step"
fi

# The table: a dptrain line as `dptrain bench train --json` prints it (with the model added), and
# PyTorch's; the demo CNN at batch 4 has no target, so the table exits 0.
sed 's/"framework": "pytorch"/"framework": "dptrain"/' "$results" | head -1 >> "$results"
table=$("$python" "$script" table "$results")
echo "$table"
# (the copied line has PyTorch's rate and no data wait, so the ratio is exactly 1.00)
if ! grep -Eq '^fashion_mnist +4 +float32 +[0-9]+ +[0-9]+ +1\.00( |$)' <<< "$table"; then
  echo "FAIL: the table has no row joining both frameworks for the demo CNN"; failures=$((failures + 1))
fi
printf '{"framework": "dptrain", "model": "resnet50", "batch": 128, "precision": "bf16", "images_per_sec": 100.0}\n' \
  '{"framework": "pytorch", "model": "resnet50", "batch": 128, "precision": "bf16", "images_per_sec": 100.0}' > "$results"
if "$python" "$script" table "$results" > /dev/null; then
  echo "FAIL: the table accepted a ratio of 1.0 where 1.3 is the target"; failures=$((failures + 1))
else
  echo "ok: the table fails a missed target"
fi

[[ $failures -eq 0 ]] || { echo "$failures check(s) failed"; exit 1; }
echo "all checks passed"
