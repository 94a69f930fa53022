#!/usr/bin/env bash
# A throw-away one-node Slurm cluster on localhost, for testing the job scripts in cluster/slurm/.
#
# Usage:
#   tests/slurm/local_cluster.sh install        install slurm-wlm and munge with apt-get when missing
#   tests/slurm/local_cluster.sh up DIR         configure and start munged, slurmctld and slurmd in DIR
#   tests/slurm/local_cluster.sh down DIR       stop every daemon started in DIR (safe to repeat)
#   tests/slurm/local_cluster.sh logs DIR       print the daemons' logs
#
# After `up`, point the Slurm commands at the cluster with `export SLURM_CONF=DIR/etc/slurm.conf`.
# Everything lives in DIR (configuration, munge key and socket, state, spool, logs, pid files);
# nothing under /etc, /var or /run is touched and no system service is started. Needs root (munged
# and slurmd run as root here) and Debian 12's slurm-wlm 22.05 and munge.
#
# Environment variables:
#   SLURM_TEST_CPUS        CPUs the node offers (default: nproc, at least 2; more than the machine
#                          has is allowed: the node reports what the configuration says)
#   SLURM_TEST_PORT        first of two TCP ports for slurmctld and slurmd on 127.0.0.1
#                          (default: a free pair found between 16800 and 16998)
#   SLURM_TEST_CRED_EXPIRE seconds a requeued job waits before it may start again (default 5;
#                          Slurm's own default is 120)
#   SLURM_TEST_UP_TIMEOUT  seconds to wait for the node to become idle (default 60)
set -euo pipefail

die() {
  echo "local_cluster: error: $*" >&2
  exit 1
}

packages=(slurm-wlm munge)

missing_packages() {
  local p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || printf '%s ' "$p"
  done
}

cmd_install() {
  local missing
  missing=$(missing_packages)
  if [[ -z $missing ]]; then
    echo "local_cluster: slurm-wlm and munge are installed"
    return 0
  fi
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "installing $missing needs root or sudo"
    sudo=sudo
  fi
  # Two tests installing at once would fight over apt's locks: take turns, then look again.
  exec 9>"${TMPDIR:-/tmp}/dptrain-slurm-install.lock"
  flock -w 600 9 || die "another installation of $missing did not finish within 600 s"
  missing=$(missing_packages)
  if [[ -z $missing ]]; then
    echo "local_cluster: slurm-wlm and munge were installed meanwhile"
    return 0
  fi
  echo "local_cluster: installing $missing"
  # Debian's maintainer scripts would start the services; in a container without an init system
  # invoke-rc.d finds none, and on a machine with one the services stay down thanks to policy-rc.d.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    created_policy=1
  fi
  local rc=0
  {
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q &&
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
        --no-install-recommends $missing
  } || rc=$?
  if ((created_policy)); then $sudo rm -f "$policy"; fi
  exec 9>&-
  ((rc == 0)) || die "apt-get install $missing failed (exit $rc)"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_ports() {
  if [[ -n ${SLURM_TEST_PORT:-} ]]; then
    [[ $SLURM_TEST_PORT =~ ^[0-9]+$ ]] || die "SLURM_TEST_PORT must be a port number, not '$SLURM_TEST_PORT'"
    ctld_port=$SLURM_TEST_PORT
    slurmd_port=$((SLURM_TEST_PORT + 1))
    return 0
  fi
  local start=$((16800 + 2 * ($$ % 100))) i p
  for ((i = 0; i < 100; i++)); do
    p=$((16800 + (start - 16800 + 2 * i) % 200))
    if ! port_in_use "$p" && ! port_in_use "$((p + 1))"; then
      ctld_port=$p
      slurmd_port=$((p + 1))
      return 0
    fi
  done
  die "no free pair of ports between 16800 and 16999; set SLURM_TEST_PORT"
}

write_config() {
  local dir=$1 cpus=$2
  cat >"$dir/etc/slurm.conf" <<EOF
# One node on localhost with CPUs as the only resource; written by tests/slurm/local_cluster.sh.
ClusterName=dptraintest
# Job ids of their own (from the port), so that two such clusters on one machine never share the
# per-job paths Slurm's PMIx plugin creates under /tmp.
FirstJobId=$((ctld_port * 1000))
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=${SLURM_TEST_CRED_EXPIRE:-5}
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
# Scheduling passes every few seconds (instead of 30 and 60), so that a requeued job restarts soon.
SchedulerParameters=bf_interval=2,sched_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
JobRequeue=1
MinJobAge=3600
KillWait=10
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  # Empty plugin stack: Debian's /etc/slurm/plugstack.conf is not ours to rely on.
  : >"$dir/etc/plugstack.conf"
  echo "PlugStackConfig=$dir/etc/plugstack.conf" >>"$dir/etc/slurm.conf"
}

pid_alive() {
  [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

cmd_up() {
  local dir=$1
  [[ $(id -u) -eq 0 ]] || die "the test cluster runs its daemons as root; run as root"
  local d
  for d in munged slurmctld slurmd slurmstepd sinfo scontrol; do
    command -v "$d" >/dev/null || die "$d not found: run '$0 install' first"
  done
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if pid_alive "$dir/run/slurmctld.pid" || pid_alive "$dir/run/slurmd.pid" || pid_alive "$dir/run/munged.pid"; then
    die "daemons of $dir are still running: '$0 down $dir' first"
  fi
  mkdir -p "$dir"/{etc,munge,state,spool,run,log}
  chmod 700 "$dir/munge"

  local cpus=${SLURM_TEST_CPUS:-$(nproc)}
  ((cpus >= 2)) || cpus=2
  pick_ports
  write_config "$dir" "$cpus"

  # munge: a private key, socket and seed; --force because the folders are not laid out the way
  # munged insists on for a system-wide install.
  if [[ ! -s $dir/munge/munge.key ]]; then
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  fi
  chmod 400 "$dir/munge/munge.key"
  munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed" ||
    die "munged did not start; see $dir/log/munged.log"
  if ! munge -n -S "$dir/munge/munge.socket" | unmunge -S "$dir/munge/munge.socket" >/dev/null; then
    die "munge credentials do not round-trip on $dir/munge/munge.socket"
  fi

  export SLURM_CONF=$dir/etc/slurm.conf
  slurmctld -i -f "$SLURM_CONF" || die "slurmctld did not start; see $dir/log/slurmctld.log"
  slurmd -N localhost -f "$SLURM_CONF" || die "slurmd did not start; see $dir/log/slurmd.log"

  local timeout=${SLURM_TEST_UP_TIMEOUT:-60} start=$SECONDS state=""
  while ((SECONDS - start < timeout)); do
    state=$(sinfo -h -n localhost -o '%T' 2>/dev/null || true)
    if [[ $state == idle ]]; then
      echo "local_cluster: up in $((SECONDS - start)) s: node localhost with $cpus CPUs, ports $ctld_port/$slurmd_port, SLURM_CONF=$SLURM_CONF"
      return 0
    fi
    sleep 1
  done
  echo "local_cluster: node state after ${timeout} s: '${state:-unknown}'" >&2
  cmd_logs "$dir" >&2
  die "the node did not become idle within ${timeout} s"
}

# Stops the daemon whose pid file is $2 (named $1): SIGTERM, then SIGKILL after a deadline.
stop_daemon() {
  local name=$1 pidfile=$2 pid i
  [[ -s $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "local_cluster: $name (pid $pid) ignored SIGTERM for 10 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}

cmd_down() {
  local dir=$1
  [[ -d $dir ]] || return 0
  dir=$(cd "$dir" && pwd)
  # Jobs first, so that no slurmstepd outlives the cluster.
  if pid_alive "$dir/run/slurmctld.pid"; then
    SLURM_CONF=$dir/etc/slurm.conf timeout 10 scancel --quiet --user=root 2>/dev/null || true
  fi
  stop_daemon slurmd "$dir/run/slurmd.pid"
  stop_daemon slurmctld "$dir/run/slurmctld.pid"
  # Any slurmstepd left (a job step that was still ending) belongs to this cluster if its spool
  # folder is ours.
  local pid
  for pid in $(pgrep -x slurmstepd 2>/dev/null || true); do
    if grep -qs "$dir" "/proc/$pid/cmdline" "/proc/$pid/environ" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  stop_daemon munged "$dir/run/munged.pid"
}

cmd_logs() {
  local dir=$1 f
  for f in "$dir"/log/slurmctld.log "$dir"/log/slurmd.log "$dir"/log/munged.log; do
    [[ -f $f ]] || continue
    echo "===== $f (last 80 lines)"
    tail -n 80 "$f"
  done
}

case "${1:-}" in
  install) cmd_install ;;
  up) [[ -n ${2:-} ]] || die "usage: $0 up DIR"; cmd_up "$2" ;;
  down) [[ -n ${2:-} ]] || die "usage: $0 down DIR"; cmd_down "$2" ;;
  logs) [[ -n ${2:-} ]] || die "usage: $0 logs DIR"; cmd_logs "$2" ;;
  *) die "usage: $0 install | up DIR | down DIR | logs DIR" ;;
esac
