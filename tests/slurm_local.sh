#!/usr/bin/env bash
# A single-node Slurm on this machine for tests: munge, slurmctld and slurmd as root, no
# systemd, no cgroups. `up` starts them and prints the SLURM_CONF to export; `down` stops exactly
# the daemons it started, by the PIDs in its pid files.
# usage: SLURM_DIR=/tmp/slurm-moetrain slurm_local.sh up|down
set -euo pipefail
D=${SLURM_DIR:-/tmp/slurm-moetrain}
H=$(hostname -s)
export SLURM_CONF=$D/slurm.conf
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
  cat >"$SLURM_CONF" <<CONF
ClusterName=moetrain
SlurmctldHost=$H
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
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
NodeName=$H NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$H Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
  # Two GPUs by count only (no device files): enough to schedule slurm/gpu.sbatch's tasks here.
  echo "NodeName=$H Name=gpu File=/dev/null,/dev/zero" >"$D/gres.conf"
  slurmctld -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  for _ in $(seq 30); do sinfo -h -o %t 2>/dev/null | grep -qE 'idle|mix' && break; sleep 1; done
  sinfo -h -o %t | grep -qE 'idle|mix' || { echo "slurm_local: the node did not come up" >&2; exit 1; }
  echo "export SLURM_CONF=$SLURM_CONF"
  ;;
down)
  # SIGTERM, then up to 20 s for each daemon to exit; exit 1 if one is still running.
  alive=0
  for p in "$D/slurmd.pid" "$D/slurmctld.pid" "$D/munged.pid"; do
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
