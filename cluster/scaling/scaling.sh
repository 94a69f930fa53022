#!/usr/bin/env bash
# Strong and weak scaling of `dptrain bench train` over 1..N workers: a CSV, a markdown table and
# a PNG plot (gnuplot) of images/s, scaling efficiency and the all-reduce time not hidden behind
# the backward pass.
#
# Usage: cluster/scaling/scaling.sh CONFIG.yaml [options]
#   --max-workers N     run 1, 2, ..., N workers (default 2)
#   --mode M            strong (fixed global batch), weak (fixed batch per worker) or both (default)
#   --out DIR           where results go (default scaling-results)
#   --global-batch B    strong scaling: the global batch (default 128)
#   --worker-batch B    weak scaling: the batch per worker; the global batch is workers x B (default 64)
#   --steps S           timed steps per repeat (default 40); --repeats R (default 3); --warmup W (default 1)
#   --threads T         threads per worker, also OMP_NUM_THREADS (default 1)
#   --mpirun CMD        the launcher (default mpirun; srun gets -n N); --mpirun-args "ARGS" after -np N
#   --dptrain PATH      the binary (default: $DPTRAIN, else build/dptrain, else dptrain on PATH)
#   --set key=value     passed to dptrain (repeatable); --data synthetic|config (default synthetic)
# Example (one node, 8 cores, workers bound to 2 cores each):
#   cluster/scaling/scaling.sh configs/fashion_mnist.yaml --max-workers 4 --threads 2 \
#       --mpirun-args "--bind-to core --map-by slot:PE=2" --out results/node01
set -euo pipefail

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "scaling.sh: $*" >&2; exit 1; }

config="" max_workers=2 mode=both out=scaling-results global_batch=128 worker_batch=64
steps=40 repeats=3 warmup=1 threads=1 mpirun=mpirun mpirun_args="" dptrain="${DPTRAIN:-}" data=synthetic
sets=()
while (($#)); do
  case "$1" in
    --max-workers) max_workers="$2"; shift 2 ;;
    --mode) mode="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --global-batch) global_batch="$2"; shift 2 ;;
    --worker-batch) worker_batch="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --mpirun) mpirun="$2"; shift 2 ;;
    --mpirun-args) mpirun_args="$2"; shift 2 ;;
    --dptrain) dptrain="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [[ -z "$config" ]] || die "one CONFIG only (got $config and $1)"; config="$1"; shift ;;
  esac
done
[[ -n "$config" ]] || { usage >&2; exit 2; }
[[ -f "$config" ]] || die "config $config: no such file"
for v in max_workers global_batch worker_batch steps repeats threads; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--${v//_/-} ${!v}: expected a positive integer"
done
[[ "$warmup" =~ ^[0-9]+$ ]] || die "--warmup $warmup: expected a non-negative integer"
case "$mode" in strong) modes=(strong) ;; weak) modes=(weak) ;; both) modes=(strong weak) ;;
  *) die "--mode $mode: expected strong, weak or both" ;; esac
if [[ -z "$dptrain" ]]; then
  root="$(cd "$(dirname "$0")/../.." && pwd)"
  if [[ -x "$root/build/dptrain" ]]; then dptrain="$root/build/dptrain"; else dptrain="$(command -v dptrain || true)"; fi
fi
[[ -n "$dptrain" && -x "$dptrain" ]] || die "no dptrain binary: build it (cmake --build build) or pass --dptrain PATH"
command -v "${mpirun%% *}" > /dev/null || die "launcher '${mpirun%% *}' not found (install openmpi-bin or pass --mpirun)"

mkdir -p "$out/raw" || die "--out $out: cannot create the folder"
export OMP_NUM_THREADS="$threads"
export_env=()
if "${mpirun%% *}" --version 2>/dev/null | grep -q "Open MPI"; then export_env=(-x OMP_NUM_THREADS); fi
np_flag=-np
[[ "$(basename "${mpirun%% *}")" != srun ]] || np_flag=-n  # srun counts tasks with -n

# Median of the values of one JSON field over the lines of a file.
median_of() {
  grep -o "\"$1\": [-0-9.e]*" "$2" | awk '{print $2}' | sort -g |
    awk '{v[NR] = $1} END {if (NR == 0) exit 1; print v[int((NR + 1) / 2)]}'
}

# What the machine was doing: a busy node makes every figure below a lower bound.
context="$(date -u +%Y-%m-%dT%H:%MZ) on $(hostname) ($(getconf _NPROCESSORS_ONLN) cores), load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?') at start"
csv="$out/scaling.csv"
echo "mode,workers,global_batch,worker_batch,images_per_sec,speedup,efficiency,step_ms,comm_exposed_ms_per_step,comm_share" > "$csv"
for m in "${modes[@]}"; do
  base=""
  for ((n = 1; n <= max_workers; ++n)); do
    if [[ "$m" == strong ]]; then gb="$global_batch"; else gb=$((n * worker_batch)); fi
    log="$out/raw/$m-np$n.jsonl"
    # shellcheck disable=SC2086  # mpirun_args is a list of words on purpose
    cmd=($mpirun "$np_flag" "$n" $mpirun_args "${export_env[@]}" "$dptrain" bench train "$config" --json --data "$data"
         --steps "$steps" --repeats "$repeats" --warmup "$warmup" --set "threads=$threads"
         --set "train.batch_size=$gb" "${sets[@]}")
    echo "scaling.sh: $m, $n worker(s), global batch $gb" >&2
    if ! "${cmd[@]}" > "$log" 2> "$out/raw/$m-np$n.stderr"; then
      cat "$log" "$out/raw/$m-np$n.stderr" >&2
      die "failed: ${cmd[*]}"
    fi
    ips="$(median_of images_per_sec "$log")" || die "no images_per_sec in $log (dptrain printed no JSON)"
    step="$(median_of step_seconds "$log")"
    comm="$(median_of comm_exposed_seconds_per_step "$log")"
    [[ -n "$base" ]] || base="$ips"
    awk -v m="$m" -v n="$n" -v gb="$gb" -v ips="$ips" -v base="$base" -v step="$step" -v comm="$comm" 'BEGIN {
      printf "%s,%d,%d,%.1f,%.1f,%.3f,%.3f,%.3f,%.4f,%.4f\n", m, n, gb, gb / n, ips, ips / base, ips / (n * base),
             1000 * step, 1000 * comm, (step > 0 ? comm / step : 0) }' >> "$csv"
  done
done

# The table, on stdout and as markdown.
table="$out/scaling.md"
{
  echo "| mode | workers | global batch | images/s | speedup | efficiency | ms/step | exposed all-reduce ms/step | share |"
  echo "|---|---|---|---|---|---|---|---|---|"
  tail -n +2 "$csv" | awk -F, '{ printf "| %s | %d | %d | %.0f | %.2f | %.0f%% | %.2f | %.3f | %.1f%% |\n",
    $1, $2, $3, $5, $6, 100 * $7, $8, $9, 100 * $10 }'
  echo
  echo "$(basename "$config"), $threads thread(s) per worker, $steps steps x $repeats repeats (median), $data data; $context."
} > "$table"
cat "$table"

if command -v gnuplot > /dev/null; then
  gnuplot <<EOF || die "gnuplot failed to draw $out/scaling.png"
set terminal pngcairo size 1500,480 font ",11" noenhanced
set output "$out/scaling.png"
set datafile separator ","
set key top left
set grid
set xtics 1
set xrange [0.8:$max_workers + 0.2]
set xlabel "workers"
set multiplot layout 1,3 title "dptrain scaling: $(basename "$config"), $threads thread(s) per worker, $(hostname)"
strong1 = $(awk -F, '$1 == "strong" && $2 == 1 {v = $5} END {print v ? v : "NaN"}' "$csv")
weak1 = $(awk -F, '$1 == "weak" && $2 == 1 {v = $5} END {print v ? v : "NaN"}' "$csv")
set title "throughput"
set ylabel "images/s"
set yrange [0:*]
plot "$csv" using 2:(strcol(1) eq "strong" ? \$5 : NaN) with linespoints lw 2 pt 7 title "strong (global batch $global_batch)", \
     "$csv" using 2:(strcol(1) eq "weak" ? \$5 : NaN) with linespoints lw 2 pt 5 title "weak ($worker_batch per worker)", \
     "$csv" using 2:(strcol(1) eq "strong" ? \$2 * strong1 : NaN) with lines dt 2 lc rgb "gray40" title "ideal (strong)", \
     "$csv" using 2:(strcol(1) eq "weak" ? \$2 * weak1 : NaN) with lines dt 3 lc rgb "gray60" title "ideal (weak)"
set title "scaling efficiency"
set key bottom left
set ylabel "images/s / (workers x one worker's images/s), %"
set yrange [0:110]
plot "$csv" using 2:(strcol(1) eq "strong" ? 100 * \$7 : NaN) with linespoints lw 2 pt 7 title "strong", \
     "$csv" using 2:(strcol(1) eq "weak" ? 100 * \$7 : NaN) with linespoints lw 2 pt 5 title "weak"
set title "all-reduce not hidden behind backward"
set key top left
set ylabel "ms per step"
set yrange [0:*]
plot "$csv" using 2:(strcol(1) eq "strong" ? \$9 : NaN) with linespoints lw 2 pt 7 title "strong", \
     "$csv" using 2:(strcol(1) eq "weak" ? \$9 : NaN) with linespoints lw 2 pt 5 title "weak"
unset multiplot
EOF
  echo "scaling.sh: wrote $csv, $table and $out/scaling.png" >&2
else
  echo "scaling.sh: wrote $csv and $table; no plot: gnuplot is not installed (apt-get install gnuplot-nox)" >&2
fi
