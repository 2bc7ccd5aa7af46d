#!/usr/bin/env bash
# Captures the conversation of DESIGN.md scenarios 1-3 from the Linux kernel, as root, in two
# namespaces of its own (deleted on exit). Usage: bash capture_scenario_1_3.sh [OUT.pcap]
# Needs ethtool, tcpdump and python3.
set -e
A=rt-fxa-$$; B=rt-fxb-$$
cleanup(){ ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null; }
trap cleanup EXIT
ip netns add $A; ip netns add $B
ip link add c0 netns $A type veth peer name s0 netns $B
ip -n $A link set c0 address 02:00:00:00:00:01; ip -n $B link set s0 address 02:00:00:00:00:02
ip -n $A addr add 10.9.0.1/24 dev c0; ip -n $B addr add 10.9.0.2/24 dev s0
ip -n $A link set c0 up; ip -n $B link set s0 up
ip netns exec $A ethtool -K c0 tx off tso off gso off gro off >/dev/null
ip netns exec $B ethtool -K s0 tx off tso off gso off gro off >/dev/null
ip netns exec $A sysctl -qw net.ipv6.conf.c0.disable_ipv6=1
ip netns exec $B sysctl -qw net.ipv6.conf.s0.disable_ipv6=1
ip netns exec $B tcpdump -i s0 -s0 -U -w "${1:-scenario_1_3.pcap}" tcp 2>/dev/null & TD=$!
sleep 1
ip netns exec $B python3 -c '
import socket,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind(("10.9.0.2",8080)); s.listen()
c,_=s.accept(); c.setsockopt(socket.IPPROTO_TCP,socket.TCP_NODELAY,1)
time.sleep(0.1); c.send(b"hello"); time.sleep(0.1); c.send(b"world"); time.sleep(0.1); c.close(); time.sleep(0.5)' & SV=$!
sleep 0.5
ip netns exec $A python3 -c '
import socket,time
c=socket.socket(); c.bind(("10.9.0.1",49152)); c.connect(("10.9.0.2",8080))
d=b""
while True:
    x=c.recv(100)
    if not x: break
    d+=x
assert d==b"helloworld", d
time.sleep(0.1); c.close(); time.sleep(0.3)'
wait $SV; sleep 0.5; kill $TD; wait $TD || true
