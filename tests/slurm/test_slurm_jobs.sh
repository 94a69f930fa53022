#!/usr/bin/env bash
# Submits the job scripts of cluster/slurm/ to a real, one-node Slurm cluster on localhost (CPU
# mode, two workers) and checks what they did.
#
# Usage: tests/slurm/test_slurm_jobs.sh PATH/TO/dptrain [jobs|time-limit|all]
#   jobs (default), one to two minutes:
#     1. train.sbatch with srun: the job COMPLETES, two MPI workers train every epoch, checkpoints
#        are written and verify (this run is also the uninterrupted reference for 3.);
#     2. train.sbatch with DPTRAIN_LAUNCHER=mpirun: the same through Open MPI's mpirun;
#     3. train-requeue.sbatch stopped in the middle of an epoch by `scancel --signal=TERM`: dptrain
#        checkpoints and exits 0, the job requeues itself (Restarts=1), the second run resumes from
#        that checkpoint at the same step, the job COMPLETES, and the final parameters and
#        optimizer state are bit-identical to those of the uninterrupted run;
#     4. train.sbatch with DPTRAIN_ELASTIC=1 (one worker) and join.sbatch (one more): the running
#        job reports "joined after epoch", trains on with two workers, and both jobs COMPLETE.
#   time-limit, about two minutes:
#     4. train-requeue.sbatch under a one-minute time limit with the warning signal 20 s before it,
#        training for about 50 s: Slurm itself stops the training (once or more), the job requeues
#        and resumes each time, and COMPLETES with every epoch trained.
# Installs slurm-wlm and munge when missing, starts munged, slurmctld and slurmd with a private
# configuration (tests/slurm/local_cluster.sh) and stops them again on every exit path.
# Exit status: 0 passed, 1 failed, 2 usage, 77 skipped (not root: the daemons need root).
#
# Environment variables:
#   SLURM_TEST_WORK         work folder (default: a new folder under TMPDIR or /tmp); it stands in
#                           for the cluster's shared storage
#   SLURM_TEST_KEEP         1: keep the work folder afterwards (it is kept anyway when a check fails)
#   SLURM_TEST_JOB_TIMEOUT  seconds any one job may take from submission to its end (default 240)
#   SLURM_TEST_NO_INSTALL   1: do not apt-get install; fail when Slurm is missing
#   and those of tests/slurm/local_cluster.sh (SLURM_TEST_PORT, SLURM_TEST_CPUS, ...)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
cluster=(bash "$here/local_cluster.sh")
config=tests/slurm/slurm_test.yaml   # relative to source_dir, where jobs are submitted from
job_timeout=${SLURM_TEST_JOB_TIMEOUT:-240}

usage="usage: $0 PATH/TO/dptrain [jobs|time-limit|all]"
(($# == 1 || $# == 2)) || { echo "$usage" >&2; exit 2; }
mode=${2:-jobs}
[[ $mode == jobs || $mode == time-limit || $mode == all ]] || { echo "$usage" >&2; exit 2; }
dptrain=$(realpath "$1")
[[ -x $dptrain ]] || { echo "test_slurm_jobs: error: $1 is not an executable" >&2; exit 2; }
if [[ $(id -u) -ne 0 ]]; then
  echo "test_slurm_jobs: skipped: the test cluster's daemons (munged, slurmd) must run as root"
  exit 77
fi

# Nothing from an outer Slurm job (or a user's own settings) may steer this cluster's commands or
# the job scripts: drop Slurm's input and output variables and the scripts' own.
for v in $(compgen -e); do
  case $v in SLURM_* | SBATCH_* | SRUN_* | SALLOC_* | SQUEUE_* | DPTRAIN*) unset "$v" ;; esac
done

say() { echo "[slurm-test $(date +%T)] $*"; }
failed=0
fail() {
  echo "test_slurm_jobs: FAILED: $*" >&2
  failed=1
  exit 1
}

t_begin=$SECONDS
if [[ ${SLURM_TEST_NO_INSTALL:-0} == 1 ]]; then
  command -v slurmctld >/dev/null || fail "slurmctld not installed and SLURM_TEST_NO_INSTALL=1"
else
  "${cluster[@]}" install
fi
t_installed=$SECONDS
say "install step: $((t_installed - t_begin)) s"

work=${SLURM_TEST_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/dptrain-slurm-test.XXXXXX")}
mkdir -p "$work/out"
work=$(cd "$work" && pwd)
jobs_submitted=()

on_exit() {
  local rc=$?
  if ((rc != 0)); then
    set +e
    echo "===== diagnostics (exit code $rc)" >&2
    if [[ -n ${SLURM_CONF:-} ]]; then
      for id in "${jobs_submitted[@]}"; do
        echo "===== scontrol show job $id" >&2
        timeout 10 scontrol show job "$id" >&2
      done
      timeout 10 sinfo -N -l >&2
    fi
    for f in "$work"/out/*.out; do
      [[ -f $f ]] || continue
      echo "===== $f" >&2
      tail -n 120 "$f" >&2
    done
    "${cluster[@]}" logs "$work/cluster" >&2
  fi
  "${cluster[@]}" down "$work/cluster" || echo "test_slurm_jobs: warning: stopping the cluster failed" >&2
  if ((rc == 0 && failed == 0)) && [[ ${SLURM_TEST_KEEP:-0} != 1 ]]; then
    rm -rf "$work"
  else
    echo "test_slurm_jobs: work folder kept: $work" >&2
  fi
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"${cluster[@]}" up "$work/cluster"
t_up=$SECONDS
say "cluster up: $((t_up - t_installed)) s"
export SLURM_CONF=$work/cluster/etc/slurm.conf
# Open MPI (under srun and mpirun alike): loopback only, root allowed, one thread per worker.
export OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_btl_tcp_if_include=lo
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export DPTRAIN=$dptrain DPTRAIN_DEVICE=cpu DPTRAIN_RUN_ROOT=$work/runs

# submit NAME SCRIPT [sbatch options...] -- [script arguments...]: prints the job id.
submit() {
  local name=$1 script=$2 opts=() id
  shift 2
  while (($# > 0)) && [[ $1 != -- ]]; do opts+=("$1"); shift; done
  (($# > 0)) && shift
  id=$(cd "$source_dir" && sbatch --parsable --job-name="$name" --output="$work/out/%x-%j.out" \
    --ntasks=2 --cpus-per-task=1 --gpus-per-task=0 "${opts[@]}" "$script" "$@") ||
    fail "sbatch $script was refused"
  id=${id%%;*}
  [[ $id =~ ^[0-9]+$ ]] || fail "sbatch printed '$id' instead of a job id"
  echo "$id"
}

job_field() {  # job_field ID FIELD: one field of `scontrol show job`
  timeout 10 scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

# wait_job ID [SECONDS]: waits until the job has ended for good; prints its final state.
wait_job() {
  local id=$1 limit=${2:-$job_timeout} start=$SECONDS state=""
  while ((SECONDS - start < limit)); do
    state=$(job_field "$id" JobState)
    case $state in
      COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED)
        echo "$state"
        return 0
        ;;
    esac
    sleep 1
  done
  fail "job $id still '$state' after $limit s"
}

# wait_for FILE PATTERN SECONDS WHAT: waits until FILE has a line matching PATTERN.
wait_for() {
  local file=$1 pattern=$2 limit=$3 what=$4 start=$SECONDS
  while ((SECONDS - start < limit)); do
    grep -q -- "$pattern" "$file" 2>/dev/null && return 0
    sleep 0.2
  done
  fail "$what: no line matching '$pattern' in $file after $limit s"
}

expect_completed() {  # expect_completed ID STATE RESTARTS
  local id=$1 state=$2 restarts=$3
  [[ $state == COMPLETED ]] || fail "job $id ended $state, expected COMPLETED"
  [[ $(job_field "$id" ExitCode) == 0:0 ]] || fail "job $id has exit code $(job_field "$id" ExitCode), expected 0:0"
  [[ $(job_field "$id" Restarts) == "$restarts" ]] ||
    fail "job $id was restarted $(job_field "$id" Restarts) times, expected $restarts"
}

expect_line() {  # expect_line FILE PATTERN [COUNT]: PATTERN matches COUNT lines (default: at least one)
  local file=$1 pattern=$2 n
  n=$(grep -c -- "$pattern" "$file" || true)
  if (($# == 3)); then
    ((n == $3)) || fail "$file: $n lines match '$pattern', expected $3"
  else
    ((n > 0)) || fail "$file: no line matches '$pattern'"
  fi
}

json_field() {  # json_field LINE NAME: a number or string value from one metrics record
  sed -n "s/.*\"$2\": \"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$1"
}

check_jobs() {
  # The reference run: 8 epochs of 128 steps, a checkpoint after each. Eight, so that the run
  # preempted after its first epoch still has seconds to go on a fast, idle machine.
  epochs=8 steps=128 final_ckpt=ckpt-e000008-s00001024.h5

  say "submitting: train.sbatch (srun), train.sbatch (mpirun), train-requeue.sbatch"
  t_submit=$SECONDS
  plain=$(submit slurm-plain cluster/slurm/train.sbatch -- "$config" --set train.epochs=$epochs)
  jobs_submitted+=("$plain")
  viampirun=$(DPTRAIN_LAUNCHER=mpirun submit slurm-mpirun cluster/slurm/train.sbatch -- \
    configs/synthetic_smoke.yaml --set threads=1 --set train.epochs=1)
  jobs_submitted+=("$viampirun")
  requeue=$(submit slurm-requeue cluster/slurm/train-requeue.sbatch -- "$config" --set train.epochs=$epochs)
  jobs_submitted+=("$requeue")

  # 1. The plain job.
  state=$(wait_job "$plain")
  t_plain=$SECONDS
  say "job $plain (train.sbatch, srun): $state after $((t_plain - t_submit)) s"
  expect_completed "$plain" "$state" 0
  out=$work/out/slurm-plain-$plain.out
  run=$work/runs/slurm-plain-$plain
  expect_line "$out" "^world: 2 workers on 1 host (mpi)$" 1
  expect_line "$out" "^epoch $epochs/$epochs  loss" 1
  expect_line "$out" "^done: $epochs epochs" 1
  expect_line "$out" "finished .* with exit code 0"
  for rank in 0 1; do
    expect_line "$run/logs/rank-$rank.log" "epoch $epochs: rank $rank trained"
  done
  last=$(tail -n 1 "$run/metrics.jsonl")
  [[ $(json_field "$last" event) == end && $(json_field "$last" epoch) == "$epochs" &&
    $(json_field "$last" step) == $((epochs * steps)) ]] ||
    fail "$run/metrics.jsonl ends with '$last', expected an end record at epoch $epochs, step $((epochs * steps))"
  [[ -f $run/checkpoints/$final_ckpt ]] || fail "no final checkpoint $run/checkpoints/$final_ckpt"
  "$dptrain" inspect "$run/checkpoints/$final_ckpt" >"$work/inspect-plain.txt" ||
    fail "dptrain inspect rejects $run/checkpoints/$final_ckpt: $(cat "$work/inspect-plain.txt")"
  expect_line "$work/inspect-plain.txt" "^world_size at save: 2$" 1

  # 2. mpirun inside the allocation.
  state=$(wait_job "$viampirun")
  say "job $viampirun (train.sbatch, mpirun): $state after $((SECONDS - t_plain)) s more"
  expect_completed "$viampirun" "$state" 0
  out=$work/out/slurm-mpirun-$viampirun.out
  expect_line "$out" "^command: mpirun "
  expect_line "$out" "^world: 2 workers on 1 host (mpi)$" 1
  expect_line "$out" "^done: 1 epochs" 1

  # 3. Preemption: SIGTERM to the job's steps once the first epoch is done, so that it lands inside
  # the second epoch.
  run=$work/runs/slurm-requeue-$requeue
  out=$work/out/slurm-requeue-$requeue.out
  wait_for "$run/metrics.jsonl" '"event": "epoch"' "$job_timeout" "job $requeue's first epoch"
  sleep 0.3
  say "job $requeue: epoch 1 done; scancel --signal=TERM $requeue"
  t_signal=$SECONDS
  scancel --signal=TERM "$requeue" || fail "scancel --signal=TERM $requeue failed"
  wait_for "$out" "^=== job $requeue .* run 2 (restart count 1)" "$job_timeout" "job $requeue's second run"
  t_second=$SECONDS
  say "job $requeue: second run started $((t_second - t_signal)) s after the signal"
  state=$(wait_job "$requeue")
  t_requeue=$SECONDS
  say "job $requeue (train-requeue.sbatch): $state, $((t_requeue - t_signal)) s after the signal"
  expect_completed "$requeue" "$state" 1
  expect_line "$out" "^=== job $requeue " 2
  expect_line "$out" "^no checkpoint in .* yet: training from the beginning" 1
  expect_line "$out" "^stopped " 1
  expect_line "$out" "last metrics event 'stop'" 1
  expect_line "$out" "^requeueing job $requeue: the workers stopped with a checkpoint" 1
  expect_line "$out" "^training complete after 2 run(s)" 1
  expect_line "$out" "^epoch $epochs/$epochs  loss" 1
  expect_line "$out" "^done: " 1

  stop=$(grep '"event": "stop"' "$run/metrics.jsonl") || fail "no stop record in $run/metrics.jsonl"
  stop_epoch=$(json_field "$stop" epoch)
  stop_step=$(json_field "$stop" step)
  stop_in_epoch=$(json_field "$stop" step_in_epoch)
  stop_ckpt=$(json_field "$stop" checkpoint)
  # Normally inside the second epoch; on a loaded machine the signal may land later, or at an epoch
  # boundary, which must work just as well.
  ((stop_epoch >= 1 && stop_epoch < epochs && stop_in_epoch < steps)) ||
    fail "the stop did not land inside the run: $stop"
  [[ $(json_field "$stop" signal) == SIGTERM ]] || fail "the stop record does not name SIGTERM: $stop"
  # The second run resumed from exactly that checkpoint.
  if ((stop_in_epoch > 0)); then
    expect_line "$out" "^resumed from $stop_ckpt: in epoch $((stop_epoch + 1)) of $epochs after step $stop_in_epoch of $steps " 1
  else
    expect_line "$out" "^resumed from $stop_ckpt: $stop_epoch of $epochs epochs done " 1
  fi
  [[ -f $stop_ckpt ]] || fail "the stop checkpoint $stop_ckpt is missing"
  "$dptrain" inspect "$stop_ckpt" >"$work/inspect-stop.txt" || fail "dptrain inspect rejects $stop_ckpt"
  expect_line "$work/inspect-stop.txt" "^step_in_epoch: $stop_in_epoch of $steps$" 1
  starts=$(grep '"event": "start"' "$run/metrics.jsonl")
  (($(wc -l <<<"$starts") == 2)) || fail "expected 2 start records in $run/metrics.jsonl, got: $starts"
  resumed_at=$(json_field "$(tail -n 1 <<<"$starts")" step)
  [[ $resumed_at == "$stop_step" ]] || fail "the second run started at step $resumed_at, the stop was at step $stop_step"
  last=$(tail -n 1 "$run/metrics.jsonl")
  [[ $(json_field "$last" event) == end && $(json_field "$last" epoch) == "$epochs" &&
    $(json_field "$last" step) == $((epochs * steps)) ]] ||
    fail "$run/metrics.jsonl ends with '$last', expected an end record at epoch $epochs, step $((epochs * steps))"
  # Stopped and resumed or not, the same training: identical parameters and optimizer state.
  reference=$work/runs/slurm-plain-$plain/checkpoints/$final_ckpt
  [[ -f $run/checkpoints/$final_ckpt ]] || fail "no final checkpoint $run/checkpoints/$final_ckpt"
  for group in /parameters /optimizer; do
    h5diff -r "$reference" "$run/checkpoints/$final_ckpt" "$group" "$group" >"$work/h5diff.txt" 2>&1 ||
      fail "$group differs between the uninterrupted and the resumed run: $(head -n 20 "$work/h5diff.txt")"
  done
  say "resumed run's final checkpoint is identical to the uninterrupted run's (/parameters, /optimizer)"

  check_elastic
}

# 4. Elastic membership: a one-worker elastic job, and a join.sbatch job that adds a worker once the
# job has published its port. One CPU each, so that both fit on the node at the same time.
check_elastic() {
  local epochs=6 t0=$SECONDS elastic joiner run out state
  elastic=$(OMPI_MCA_mpi_yield_when_idle=1 DPTRAIN_ELASTIC=1 submit slurm-elastic cluster/slurm/train.sbatch \
    --ntasks=1 -- "$config" --set train.epochs=$epochs)
  jobs_submitted+=("$elastic")
  run=$work/runs/slurm-elastic-$elastic
  wait_for "$run/elastic/port" . "$job_timeout" "job $elastic's published port"
  joiner=$(OMPI_MCA_mpi_yield_when_idle=1 submit slurm-join cluster/slurm/join.sbatch --ntasks=1 -- "$run")
  jobs_submitted+=("$joiner")
  state=$(wait_job "$elastic")
  say "job $elastic (train.sbatch, elastic): $state after $((SECONDS - t0)) s"
  expect_completed "$elastic" "$state" 0
  state=$(wait_job "$joiner")
  say "job $joiner (join.sbatch): $state"
  expect_completed "$joiner" "$state" 0
  out=$work/out/slurm-elastic-$elastic.out
  expect_line "$out" "^command: mpirun --enable-recovery --ompi-server file:$run/ompi-server.uri "
  expect_line "$out" "^world: 1 worker on 1 host (mpi)$" 1
  expect_line "$out" "^rank 1 (pid [0-9]* on .*) joined after epoch [0-9]*: 2 worker(s) now" 1
  expect_line "$out" "^epoch $epochs/$epochs  loss" 1
  expect_line "$out" "^run status: completed$" 1
  expect_line "$work/out/slurm-join-$joiner.out" "^dptrain join: joined the job in $run as ranks 1-1 of 2" 1
  last=$(tail -n 1 "$run/metrics.jsonl")
  [[ $(json_field "$last" event) == end && $(json_field "$last" epoch) == "$epochs" ]] ||
    fail "$run/metrics.jsonl ends with '$last', expected an end record at epoch $epochs"
  ! pgrep -f "ompi-server --no-daemonize -r $run/" >/dev/null ||
    fail "the ompi-server of job $elastic is still running after the job ended"
}

# 4. The time limit: --time=1 with the warning signal 20 s before it. Slurm checks time limits every
# 30 s and sends the warning up to that much early, so each run is signalled 10 to 40 s after it
# starts. The run is sized to train for about 50 s on this machine (measured first with one epoch
# under srun), so the first run is always stopped, and two or three requeues finish it.
check_time_limit() {
  local t0=$SECONDS calibration ips epochs limited state restarts out run last
  calibration=$work/calibration.jsonl
  (cd "$source_dir" && timeout 120 srun --mpi=pmix --ntasks=2 --cpus-per-task=1 --gpus-per-task=0 \
    "$dptrain" train "$config" --progress off --set train.epochs=1 --metrics "$calibration" >"$work/calibration.out" 2>&1) ||
    fail "the calibration run under srun failed: $(tail -n 20 "$work/calibration.out")"
  ips=$(json_field "$(grep '"event": "epoch"' "$calibration")" images_per_sec)
  [[ $ips =~ ^[0-9.]+$ ]] || fail "no images_per_sec in $calibration"
  epochs=$(awk -v ips="$ips" 'BEGIN { e = int(50 * ips / 4096) + 1; print (e < 12 ? 12 : (e > 200 ? 200 : e)) }')
  say "calibration: $ips images/s, so $epochs epochs (about 50 s of training)"
  limited=$(submit slurm-limit cluster/slurm/train-requeue.sbatch --time=1 --signal=TERM@20 -- \
    "$config" --set train.epochs="$epochs")
  jobs_submitted+=("$limited")
  # About 50 s of training plus a requeue every 10 to 40 s; more time where the machine is busier
  # than the calibration run saw.
  state=$(wait_job "$limited" $((job_timeout + 240)))
  restarts=$(job_field "$limited" Restarts)
  say "job $limited (train-requeue.sbatch, time limit): $state after $((SECONDS - t0)) s, $restarts restart(s)"
  [[ $state == COMPLETED ]] || fail "job $limited ended $state, expected COMPLETED"
  [[ $(job_field "$limited" ExitCode) == 0:0 ]] || fail "job $limited has exit code $(job_field "$limited" ExitCode)"
  ((restarts >= 1)) || fail "job $limited was never stopped by its time-limit signal (Restarts=$restarts)"
  out=$work/out/slurm-limit-$limited.out
  run=$work/runs/slurm-limit-$limited
  expect_line "$out" "^=== job $limited " $((restarts + 1))
  # Every requeue followed a stop with a checkpoint (none a failure), and every later run resumed.
  expect_line "$out" "^stopped " "$restarts"
  expect_line "$out" "^requeueing job $limited: the workers stopped with a checkpoint" "$restarts"
  (($(grep '"event": "stop"' "$run/metrics.jsonl" | grep -c '"signal": "SIGTERM"') == restarts)) ||
    fail "$run/metrics.jsonl does not hold $restarts stop records naming SIGTERM"
  expect_line "$out" "^resumed from " "$restarts"
  expect_line "$out" "^epoch $epochs/$epochs  loss" 1
  expect_line "$out" "^training complete after $((restarts + 1)) run(s)" 1
  last=$(tail -n 1 "$run/metrics.jsonl")
  [[ $(json_field "$last" event) == end && $(json_field "$last" step) == $((epochs * 128)) ]] ||
    fail "$run/metrics.jsonl ends with '$last', expected an end record at step $((epochs * 128))"
}

case $mode in
  jobs) check_jobs ;;
  time-limit) check_time_limit ;;
  all) check_jobs; check_time_limit ;;
esac

say "PASSED: install $((t_installed - t_begin)) s, cluster up $((t_up - t_installed)) s, jobs $((SECONDS - t_up)) s, total $((SECONDS - t_begin)) s"
