#!/usr/bin/env bash
# A cluster of N nodes on this machine (root): one network namespace per node, each with its
# own hostname (unshare --uts) and an address on a private subnet that exists only on a bridge
# this script makes; mpirun reaches the nodes through an rsh agent that runs its command in the
# node's namespace. Traffic goes only to addresses inside what the script made.
#   tests/cluster_local.sh up N [RATE [RANKS_PER_NODE]]   e.g. up 2 2gbit 2
#   tests/cluster_local.sh down
# `up` prints the exports that make a plain mpirun (and launch/multinode.sh -H $MT_HOSTFILE) use
# the nodes; RATE limits every node's link both ways (tc tbf; omitted: no limit). `down` removes
# exactly what `up` made. MT_CLUSTER (default mtc) names the cluster, MT_CLUSTER_NET (default
# 10.77.0) its /24 subnet; the state lives in /tmp/$MT_CLUSTER.
set -euo pipefail
name=${MT_CLUSTER:-mtc}
net=${MT_CLUSTER_NET:-10.77.0}
dir=/tmp/$name
bridge=${name}br

down() {
  [ -f "$dir/made" ] || return 0
  # Newest first: each node's veth pair and namespace, then the bridge.
  tac "$dir/made" | while read -r kind what; do
    case $kind in
      netns) ip netns del "$what" 2>/dev/null || true ;;
      link) ip link del "$what" 2>/dev/null || true ;;
    esac
  done
  rm -rf "$dir"
}

up() {
  local n=$1 rate=${2:-} per_node=${3:-2}
  [ "$n" -ge 1 ] && [ "$n" -le 200 ] || { echo "cluster_local.sh: 1 to 200 nodes" >&2; exit 2; }
  [ ! -e "$dir" ] || { echo "cluster_local.sh: $dir exists (run down first)" >&2; exit 2; }
  # The bucket holds 2 ms at the rate (at least 256 KB), so that the timer's granularity does not
  # cap a fast link below its rate.
  local burst=256kb
  case $rate in
    *gbit) burst=$(( ${rate%gbit} * 250 ))kb ;;
    *mbit) burst=$(( ${rate%mbit} / 4 ))kb ;;
  esac
  [ "${burst%kb}" -ge 256 ] || burst=256kb
  mkdir -p "$dir"
  : >"$dir/made"
  trap 'down' ERR
  ip link add "$bridge" type bridge
  echo "link $bridge" >>"$dir/made"
  ip addr add "$net.254/24" dev "$bridge"  # mpirun's own end, in this namespace
  ip link set "$bridge" up
  : >"$dir/hostfile"
  for i in $(seq 1 "$n"); do
    local ns=${name}$i veth=${name}v$i
    ip netns add "$ns"
    echo "netns $ns" >>"$dir/made"
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    echo "link $veth" >>"$dir/made"  # deleted before its namespace: a namespace goes lazily
    ip link set "$veth" master "$bridge" up
    ip netns exec "$ns" ip addr add "$net.$i/24" dev eth0
    ip netns exec "$ns" ip link set eth0 up
    ip netns exec "$ns" ip link set lo up
    if [ -n "$rate" ]; then  # both directions: into the node on the host end, out of it inside
      tc qdisc add dev "$veth" root tbf rate "$rate" burst "$burst" latency 100ms
      ip netns exec "$ns" tc qdisc add dev eth0 root tbf rate "$rate" burst "$burst" latency 100ms
    fi
    echo "$net.$i slots=$per_node" >>"$dir/hostfile"
  done
  cat >"$dir/agent" <<EOF
#!/bin/sh
# mpirun's rsh agent for cluster $name: HOST COMMAND runs COMMAND in HOST's namespace.
host=\$1; shift
case \$host in $net.*) i=\${host##*.} ;; *) echo "agent: \$host is not a node of $name" >&2; exit 1 ;; esac
exec ip netns exec $name\$i unshare --uts sh -c "hostname $name-node\$i; \$*"
EOF
  chmod +x "$dir/agent"
  # With more ranks than cores, ranks that spin while they wait delay TCP messages (about 24 ms).
  cat >"$dir/env" <<EOF
export MT_HOSTFILE=$dir/hostfile
export OMPI_MCA_plm_rsh_agent=$dir/agent
export OMPI_MCA_btl=tcp,self,vader
export OMPI_MCA_btl_tcp_if_include=$net.0/24
export OMPI_MCA_oob_tcp_if_include=$net.0/24
export OMPI_MCA_mpi_yield_when_idle=1
EOF
  trap - ERR
  cat "$dir/env"
}

case ${1:-} in
  up) shift; up "$@" ;;
  down) down ;;
  *) sed -n '6,7p' "$0" >&2; exit 2 ;;
esac
