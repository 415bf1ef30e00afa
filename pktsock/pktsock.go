// Package pktsock sends whole Ethernet frames on an AF_PACKET socket bound
// to one device, for gretun's opt-in `underlay packet` send path.
//
// Why: BENCHMARKS.md ("Underlay send path: raw socket vs AF_PACKET")
// measured an AF_PACKET SOCK_RAW socket with PACKET_QDISC_BYPASS and
// sendmmsg(2) delivering about 1.5x the packets per second of the raw IP
// socket, at two thirds of the CPU per packet.
//
// What it bypasses: a frame written here goes straight to the device's
// driver. The kernel does not route it (no policy routing), does not
// resolve the neighbour (the caller writes both MAC addresses), does not run
// netfilter's output and postrouting hooks (iptables/nftables rules, marks,
// NAT) and, with the qdisc bypassed, no `tc` qdisc shapes or queues it: a
// full device queue shows as ENOBUFS or as silent drops. The caller must
// send complete IPv4 packets (total length, header checksum, identification
// filled in) no larger than the device MTU. The socket has protocol 0, so
// it receives nothing.
package pktsock
