package e2e

import (
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// TestIP6GretapBridged: ip6gretap between the routers over the IPv6
// underlay, each bridged with its LAN: the hosts, one subnet across it,
// resolve each other (ARP, neighbour discovery), ping and move TCP; the
// device has Linux's default MTU (1434 on 1500, less key, csum and seq),
// and the outer packets carry flow labels hashed from the inner flows
// (Linux's auto_flowlabels), not 0.
func TestIP6GretapBridged(t *testing.T) {
	tp := Classic(t)
	tp.underlay6()
	tp.tapRouters("ip6gretap", Under6A, Under6B, "key", "7", "csum", "seq")
	if l := tp.link(tp.A, "gtap"); l.LinkType != "ether" || l.MTU != 1434-12 {
		t.Errorf("ip6gretap device: %+v, want Ethernet with MTU 1422", l)
	}
	tp.bridgeLAN(tp.A)
	tp.bridgeLAN(tp.B)
	tp.bridgedHosts(1422)

	file := t.TempDir() + "/outer.pcapng"
	p := tp.startCapture(tp.A, "gtap", "-c", "6", "-w", file)
	tp.Ping(tp.HostA, "198.51.100.3")
	if code := wait(t, p); code != 0 {
		t.Fatalf("capture exited %d: %s", code, p.Log())
	}
	macB := tp.link(tp.HostB, "eth0").Address
	if neigh := tp.Sh(tp.HostA, "ip", "neigh", "show", "198.51.100.3"); !strings.Contains(neigh, macB) {
		t.Errorf("ARP on host A: %q, want host B's MAC address %s", neigh, macB)
	}
	tp.Ping(tp.HostB, "2001:db8:1::2")
	tp.Transfer(tp.HostA, tp.HostB, "198.51.100.3", 4<<20)
	tp.Transfer(tp.HostB, tp.HostA, "2001:db8:1::2", 1<<20)

	labels := map[uint32]bool{}
	for _, pk := range readPcapng(t, file) {
		ip, _ := gopacket.NewPacket(pk.Data, layers.LayerTypeIPv6, gopacket.Default).Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if ip == nil {
			t.Fatalf("outer packet is not IPv6: % x", pk.Data)
		}
		if pk.Out {
			labels[ip.FlowLabel] = true
		}
	}
	if len(labels) == 0 || labels[0] {
		t.Errorf("outer flow labels sent: %v, want non-zero ones", labels)
	}
	sa, sb := tp.Stats(tp.A, "gtap"), tp.Stats(tp.B, "gtap")
	if sa.RxErrors != 0 || sb.RxErrors != 0 || sa.TxPackets < 1000 || sb.RxPackets < 1000 {
		t.Errorf("counters: A %+v B %+v", sa, sb)
	}
}

// TestIP6GretapPacketTooBig: a router between the ip6gretap's ends with a
// 1300-byte link answers A's large outer packets with ICMPv6 Packet Too
// Big; gretun lowers the tunnel's path MTU from it, and frames that no
// longer fit are dropped and counted (a bridge sends no ICMP error),
// while smaller ones still cross.
func TestIP6GretapPacketTooBig(t *testing.T) {
	tp := narrow6(t)
	tp.Run(tp.A, "gtap", "mode", "ip6gretap", "remote", "2001:db8:b::1", "local", "2001:db8:a::1")
	tp.Run(tp.B, "gtap", "mode", "ip6gretap", "remote", "2001:db8:a::1", "local", "2001:db8:b::1")
	tp.Sh(tp.A, "ip", "addr", "add", "203.0.113.1/24", "dev", "gtap")
	tp.Sh(tp.B, "ip", "addr", "add", "203.0.113.3/24", "dev", "gtap")
	tp.Ping(tp.A, "203.0.113.3")
	// 1350 bytes of ICMP: a frame the device (MTU 1434) takes, an outer
	// packet of 1444 bytes that the narrow link refuses.
	tp.Exec(tp.A, "ping", "-c", "1", "-W", "1", "-M", "do", "-s", "1350", "203.0.113.3")
	tp.waitFor("path MTU learnt", func() bool { return tp.status(tp.A, "gtap").PathMTU == 1300-66 })
	before := tp.Stats(tp.A, "gtap")
	if _, err := tp.Exec(tp.A, "ping", "-c", "2", "-i", "0.2", "-W", "1", "-M", "do", "-s", "1300", "203.0.113.3"); err == nil {
		t.Error("frames larger than the learnt path crossed")
	}
	after := tp.Stats(tp.A, "gtap")
	if after.TxTooBig-before.TxTooBig != 2 || after.TxICMP != before.TxICMP {
		t.Errorf("tx_too_big %d -> %d, tx_icmp %d -> %d: want the 2 frames dropped and counted, no ICMP", before.TxTooBig, after.TxTooBig, before.TxICMP, after.TxICMP)
	}
	tp.Ping(tp.A, "203.0.113.3", "-s", "1150", "-M", "do")
}
