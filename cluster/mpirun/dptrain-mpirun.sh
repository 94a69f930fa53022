#!/usr/bin/env bash
# Starts dptrain under Open MPI's mpirun with the usual placement, binding and network settings.
#
# Usage: cluster/mpirun/dptrain-mpirun.sh [options] -- DPTRAIN_ARGS...
#   --np N              workers in all (default: the slots of the hostfile, else 1)
#   --hostfile FILE     nodes and their slots (see cluster/mpirun/hostfile.example)
#   --per-node K        workers per node (--map-by ppr:K:node)
#   --threads T         cores per worker: each worker is bound to T cores and OMP_NUM_THREADS=T
#   --net LIST          keep Open MPI's TCP traffic (data and control) on these interfaces or
#                       subnets, e.g. eth1 or 10.1.0.0/16 (comma-separated)
#   --ucx DEVICE        send data over UCX (InfiniBand, RoCE) on DEVICE, e.g. mlx5_0:1
#   --dptrain PATH      the binary (default: build/dptrain, else dptrain on PATH)
#   --mpirun-args ARGS  more mpirun options, e.g. "--oversubscribe" or "--report-bindings"
#   --dry-run           print the command instead of running it
# Example: 2 nodes x 4 workers x 8 cores, training traffic on eth1:
#   cluster/mpirun/dptrain-mpirun.sh --hostfile hosts --per-node 4 --threads 8 --net eth1 -- \
#       train configs/fashion_mnist.yaml --log-dir logs
set -euo pipefail

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "dptrain-mpirun.sh: $*" >&2; exit 1; }

np="" hostfile="" per_node="" threads="" net="" ucx="" dptrain="" extra="" dry_run=0
while (($#)); do
  case "$1" in
    --np) np="$2"; shift 2 ;;
    --hostfile) hostfile="$2"; shift 2 ;;
    --per-node) per_node="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --net) net="$2"; shift 2 ;;
    --ucx) ucx="$2"; shift 2 ;;
    --dptrain) dptrain="$2"; shift 2 ;;
    --mpirun-args) extra="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) die "unknown option $1 (dptrain's own arguments go after --; see --help)" ;;
  esac
done
(($#)) || die "nothing to run: give dptrain's arguments after --, e.g. -- train configs/fashion_mnist.yaml"
for v in np per_node threads; do
  [[ -z "${!v}" || "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--${v//_/-} ${!v}: expected a positive integer"
done
if [[ -n "$hostfile" ]]; then
  [[ -r "$hostfile" ]] || die "--hostfile $hostfile: cannot read it"
  if [[ -z "$np" ]]; then
    np=$(awk '!/^[[:space:]]*#/ && NF { n = 1; for (i = 2; i <= NF; ++i) if ($i ~ /^slots=/) { split($i, a, "="); n = a[2] } s += n } END { print s + 0 }' "$hostfile")
    ((np > 0)) || die "--hostfile $hostfile: no slots in it"
  fi
fi
np="${np:-1}"
if [[ -z "$dptrain" ]]; then
  root="$(cd "$(dirname "$0")/../.." && pwd)"
  if [[ -x "$root/build/dptrain" ]]; then dptrain="$root/build/dptrain"; else dptrain="$(command -v dptrain || true)"; fi
fi
[[ -n "$dptrain" ]] || die "no dptrain binary: build it (cmake --build build) or pass --dptrain PATH"

cmd=(mpirun -np "$np")
[[ -z "$hostfile" ]] || cmd+=(--hostfile "$hostfile")
# Placement and binding: K workers per node, each on T cores of its own.
map=""
[[ -z "$per_node" ]] || map="ppr:$per_node:node"
if [[ -n "$threads" ]]; then
  map="${map:-slot}:PE=$threads"
  cmd+=(--map-by "$map" --bind-to core -x "OMP_NUM_THREADS=$threads")
elif [[ -n "$map" ]]; then
  cmd+=(--map-by "$map")
fi
# Network: both the data path (btl) and Open MPI's own control channel (oob) on the chosen interfaces.
if [[ -n "$net" ]]; then
  cmd+=(--mca btl_tcp_if_include "$net" --mca oob_tcp_if_include "$net")
fi
if [[ -n "$ucx" ]]; then
  cmd+=(--mca pml ucx --mca btl ^openib,uct -x "UCX_NET_DEVICES=$ucx")
fi
# shellcheck disable=SC2206  # extra is a list of words on purpose
[[ -z "$extra" ]] || cmd+=($extra)
cmd+=("$dptrain" "$@")

if ((dry_run)); then
  printf '%q ' "${cmd[@]}"
  echo
  exit 0
fi
command -v mpirun > /dev/null || die "mpirun not found (Debian: apt-get install openmpi-bin)"
exec "${cmd[@]}"
