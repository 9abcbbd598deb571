#!/usr/bin/env bash
# Runs moetrain across the nodes of a hostfile and prints the mpirun line it runs.
#   launch/multinode.sh -H HOSTFILE -p RANKS_PER_NODE [-i IFACE] [--gpu] [--] moetrain-arguments...
# Ranks are placed node by node (rank = node * RANKS_PER_NODE + local rank), the layout the
# hierarchical all-to-all expects; -i names the network interface for MPI's TCP traffic and
# NCCL's sockets (e.g. eth0, ib0). LAUNCH_DAEMON_TIMEOUT (seconds, default 60) bounds how long
# mpirun waits on the daemon of a node it cannot reach. On one machine, a hostfile line
# "localhost slots=4" with -p 2 stands for 2 nodes of 2 ranks: moetrain is then told
# --dist.ranks_per_node 2.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# The binary: MOETRAIN=PATH, else the checkout's build/, else the installed one (PREFIX/bin, as
# `cmake --install` lays out PREFIX/share/moetrain/launch).
bin=${MOETRAIN:-$here/build/moetrain}
[ -n "${MOETRAIN:-}" ] || [ -x "$bin" ] || bin=$(cd "$here/../.." && pwd)/bin/moetrain
hostfile= per_node= iface= gpu=0
while [ $# -gt 0 ]; do
  case $1 in
    -H) hostfile=$2; shift 2 ;;
    -p) per_node=$2; shift 2 ;;
    -i) iface=$2; shift 2 ;;
    --gpu) gpu=1; shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[ -n "$hostfile" ] && [ -n "$per_node" ] || { sed -n '2,3p' "$0" >&2; exit 2; }
[ -r "$hostfile" ] || { echo "launch/multinode.sh: cannot read hostfile $hostfile" >&2; exit 2; }
hosts=$(grep -cvE '^\s*(#|$)' "$hostfile")
distinct=$(grep -vE '^\s*(#|$)' "$hostfile" | awk '{print $1}' | sort -u | wc -l)
if [ "$distinct" -eq 1 ]; then
  # One machine standing for several nodes: its slots in blocks of per_node.
  slots=$(grep -vE '^\s*(#|$)' "$hostfile" | head -1 | sed -nE 's/.*slots=([0-9]+).*/\1/p')
  ranks=${slots:-$per_node}
  set -- "$@" --dist.ranks_per_node "$per_node"
  mpi=(mpirun -np "$ranks" --hostfile "$hostfile" --oversubscribe --bind-to none)
else
  ranks=$(( hosts * per_node ))
  mpi=(mpirun -np "$ranks" --hostfile "$hostfile" --map-by "ppr:$per_node:node" --bind-to core)
  # A node whose link dies leaves mpirun waiting on its daemon for Open MPI's default 8 minutes
  # of TCP keepalives, after moetrain's ranks have given up (dist.timeout_s): probe an idle
  # daemon link after half of LAUNCH_DAEMON_TIMEOUT seconds (default 60), 3 times in the rest.
  dt=${LAUNCH_DAEMON_TIMEOUT:-60}
  mpi+=(--mca oob_tcp_keepalive_time $(( dt / 2 > 0 ? dt / 2 : 1 ))
        --mca oob_tcp_keepalive_intvl $(( dt / 6 > 0 ? dt / 6 : 1 )) --mca oob_tcp_keepalive_probes 3)
fi
mpi+=(-x OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" -x OMPI_MCA_mpi_yield_when_idle=1)
if [ -n "$iface" ]; then
  mpi+=(--mca btl_tcp_if_include "$iface" --mca oob_tcp_if_include "$iface" -x NCCL_SOCKET_IFNAME="$iface")
fi
[ $gpu -eq 1 ] && mpi+=(-x NCCL_DEBUG="${NCCL_DEBUG:-WARN}")
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
echo "+ ${mpi[*]} $bin $*"
exec "${mpi[@]}" "$bin" "$@"
