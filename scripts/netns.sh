#!/usr/bin/env bash
# A private two-namespace test bed for running rawtcp against the Linux kernel by hand
# (TESTBED.md's recipe). Needs root.
#
#   scripts/netns.sh up      create rt-dut (rawtcp's side, interface d0, no kernel address)
#                            and rt-peer (the kernel's side, p0 = 10.9.0.1/24), joined by veth
#   scripts/netns.sh down    delete both (and with them the veth pair)
#   scripts/netns.sh status  show what exists
#
# Then run examples inside rt-dut, each rawtcp stack with an address of its own on d0
# (10.9.0.2/24, 10.9.0.3/24, ...: two stacks on one address are refused, RFC 5227), and a
# kernel peer in rt-peer, for example:
#   sudo ip netns exec rt-dut  target/debug/examples/echo_server --iface d0 --ip 10.9.0.2/24
#   sudo ip netns exec rt-peer socat - TCP:10.9.0.2:7
# Traffic stays between the two namespaces; the root namespace never sees the link.
#
# Options (environment): DUT=rt-dut PEER=rt-peer OFFLOADS=off|on (the peer's checksum and
# segmentation offloads; default off, so captures show the segments as they are on a wire).
set -euo pipefail

DUT=${DUT:-rt-dut}
PEER=${PEER:-rt-peer}
OFFLOADS=${OFFLOADS:-off}

if [ "$(id -u)" -ne 0 ]; then
  echo "netns.sh: needs root (it creates namespaces and a veth pair)" >&2
  exit 1
fi

up() {
  if exists "$DUT"; then
    echo "netns.sh: $DUT exists already; run '$0 down' first" >&2
    exit 1
  fi
  ip netns add "$DUT"
  ip netns add "$PEER"
  # Both ends are created inside the namespaces: the root namespace never has them.
  ip link add d0 netns "$DUT" type veth peer name p0 netns "$PEER"
  ip -n "$DUT" link set lo up
  ip -n "$DUT" link set d0 up
  # rawtcp owns its addresses on d0 through AF_PACKET: the kernel in rt-dut gets no address
  # there, so it neither answers ARP for them nor resets rawtcp's connections.
  ip netns exec "$DUT" sysctl -qw net.ipv6.conf.d0.disable_ipv6=1
  ip -n "$PEER" link set lo up
  ip -n "$PEER" addr add 10.9.0.1/24 dev p0
  ip -n "$PEER" link set p0 up
  ip netns exec "$PEER" sysctl -qw net.ipv6.conf.p0.disable_ipv6=1
  if command -v ethtool >/dev/null 2>&1; then
    ip netns exec "$PEER" ethtool -K p0 tx "$OFFLOADS" tso "$OFFLOADS" gso "$OFFLOADS" \
      gro "$OFFLOADS" >/dev/null 2>&1 || true
  elif [ "$OFFLOADS" = off ]; then
    echo "netns.sh: ethtool is missing, the peer keeps its offloads (rawtcp copes)" >&2
  fi
  status
  cat <<EOT

rawtcp side:  sudo ip netns exec $DUT <example> --iface d0 --ip 10.9.0.2/24 ...
              (one address per running example: 10.9.0.2, 10.9.0.3, ...)
kernel side:  sudo ip netns exec $PEER <program>   (the kernel is 10.9.0.1)
EOT
}

down() {
  # Deleting a namespace deletes its end of the veth pair, and with it the other end.
  ip netns del "$DUT" 2>/dev/null || true
  ip netns del "$PEER" 2>/dev/null || true
  echo "netns.sh: $DUT and $PEER removed"
}

# Whether namespace $1 exists (by its whole name: rt-dut is not rt-dut-1234-0).
exists() {
  ip netns list | awk '{print $1}' | grep -qxF "$1"
}

status() {
  for ns in "$DUT" "$PEER"; do
    if exists "$ns"; then
      echo "== $ns"
      ip -n "$ns" -brief address show
    else
      echo "== $ns: absent"
    fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
