#!/usr/bin/env bash
# A Slurm on this machine for tests: munge, slurmctld and slurmd as root, no systemd, no
# cgroups. `up` starts them and prints the SLURM_CONF to export; `down` stops exactly the daemons
# it started, by the PIDs in its pid files. One node (this host) by default; with SLURM_CLUSTER
# set to the folder of a cluster that tests/cluster_local.sh made (/tmp/NAME), one slurmd per
# node, each in its node's namespace under the node's hostname, and slurmctld on the bridge's
# address: sbatch --nodes N runs across the nodes over their network.
# usage: [SLURM_CLUSTER=/tmp/mtc] SLURM_DIR=/tmp/slurm-moetrain slurm_local.sh up|down
set -euo pipefail
D=${SLURM_DIR:-/tmp/slurm-moetrain}
H=$(hostname -s)
export SLURM_CONF=$D/slurm.conf
cluster=${SLURM_CLUSTER:-}
case "${1:-up}" in
up)
  mkdir -p "$D/state" "$D/spool"
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey -c -f -k /etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
  fi
  mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
  if ! munge -n >/dev/null 2>&1; then
    # munged runs as munge and keeps its pid file in /run/munge; we note the pid to stop it later.
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    cp /run/munge/munged.pid "$D/munged.pid"
    for _ in $(seq 20); do munge -n >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  mem=$(( $(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 - 2048 ))
  # The nodes: NAME ADDRESS NAMESPACE (none: this host's).
  if [ -n "$cluster" ]; then
    name=$(basename "$cluster")
    awk -v n="$name" '{split($1, a, "."); print n "-node" a[4], $1, n a[4]}' "$cluster/hostfile" >"$D/nodes"
    net=$(awk 'NR == 1 {sub(/\.[0-9]+$/, "", $1); print $1}' "$cluster/hostfile")
    ctld="$H($net.254)"  # the bridge's end, where the nodes reach this namespace
  else
    echo "$H 127.0.0.1 -" >"$D/nodes"
    ctld=$H
  fi
  nodes=$(wc -l <"$D/nodes")
  mem=$((mem / nodes))
  cat >"$SLURM_CONF" <<CONF
ClusterName=moetrain
SlurmctldHost=$ctld
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/%n
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.%n.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.%n.log
TmpFS=$D/tmp/%n
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=pmix
GresTypes=gpu
MailProg=/bin/true
ReturnToService=2
JobRequeue=1
$(while read -r node addr _; do
  echo "NodeName=$node NodeAddr=$addr CPUs=$(nproc) RealMemory=$mem Gres=gpu:2 State=UNKNOWN"
done <"$D/nodes")
PartitionName=debug Nodes=$(cut -d' ' -f1 "$D/nodes" | paste -sd,) Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
  # Two GPUs by count only (no device files): enough to schedule slurm/gpu.sbatch's tasks here.
  while read -r node _; do echo "NodeName=$node Name=gpu File=/dev/null,/dev/zero"; done \
    <"$D/nodes" >"$D/gres.conf"
  slurmctld -f "$SLURM_CONF"
  while read -r node _ ns; do
    mkdir -p "$D/spool/$node" "$D/tmp/$node"  # TmpFS: PMIx's per-step folders, one per node
    if [ "$ns" = - ]; then
      slurmd -f "$SLURM_CONF"
    else  # in the node's network namespace, under its hostname (nsenter, not `ip netns exec`,
      # which mounts a sysfs of its own, without the cgroup file systems slurmd reads)
      nsenter --net=/run/netns/"$ns" unshare --uts sh -c "hostname $node; exec slurmd -N $node -f $SLURM_CONF"
    fi
  done <"$D/nodes"
  up=0
  for _ in $(seq 30); do
    up=$(sinfo -h -N -o %t 2>/dev/null | grep -cE 'idle|mix' || true)
    [ "$up" -eq "$nodes" ] && break
    sleep 1
  done
  [ "$up" -eq "$nodes" ] || { echo "slurm_local: $up of $nodes nodes came up" >&2; exit 1; }
  echo "export SLURM_CONF=$SLURM_CONF"
  ;;
down)
  # SIGTERM, then up to 20 s for each daemon to exit; exit 1 if one is still running.
  alive=0
  for p in "$D"/slurmd.*.pid "$D/slurmctld.pid" "$D/munged.pid"; do
    [ -s "$p" ] || continue
    pid=$(cat "$p")
    rm -f "$p"
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "slurm_local: $pid ($p) still running 20 s after SIGTERM" >&2
      alive=1
    else
      echo "slurm_local: stopped $pid ($p)"
    fi
  done
  exit $alive
  ;;
esac
