package e2e

import (
	"strings"
	"testing"
)

// TestPacketUnderlay runs the classic scenario with `underlay packet` on
// both routers: the outer packets leave on an AF_PACKET socket (counted in
// tx_packet_socket) and everything still arrives. With the default
// underlay the counter stays zero: the raw socket sends everything.
func TestPacketUnderlay(t *testing.T) {
	for _, underlay := range []string{"packet", "raw"} {
		t.Run(underlay, func(t *testing.T) {
			tp := Classic(t)
			var extra []string
			if underlay == "packet" {
				extra = []string{"underlay", "packet"}
			}
			a, b := tp.classicTunnels(append([]string{"mode", "gre", "ttl", "255"}, extra...)...)
			sa, sb := tp.carryBothWays()
			line := tp.Sh(tp.A, Bin(t, "gretun"), "tunnel", "show", "netb")
			switch underlay {
			case "packet":
				if sa.TxPacketSocket < 1000 || sb.TxPacketSocket < 1000 {
					t.Errorf("tx_packet_socket A %d B %d, want over 1000 each after 4 MiB each way", sa.TxPacketSocket, sb.TxPacketSocket)
				}
				if !strings.Contains(line, "underlay packet") {
					t.Errorf("tunnel show does not print the underlay: %q", line)
				}
				if !strings.Contains(a.Log(), "sending on AF_PACKET") || !strings.Contains(b.Log(), "sending on AF_PACKET") {
					t.Errorf("no log of the AF_PACKET path:\nA: %s\nB: %s", a.Log(), b.Log())
				}
			case "raw":
				if sa.TxPacketSocket != 0 || sb.TxPacketSocket != 0 {
					t.Errorf("tx_packet_socket A %d B %d with the default underlay, want 0", sa.TxPacketSocket, sb.TxPacketSocket)
				}
				if strings.Contains(line, "underlay") {
					t.Errorf("tunnel show prints the default underlay: %q", line)
				}
			}
			for _, p := range []*Proc{a, b} {
				if err := p.Stop(); err != nil {
					t.Errorf("gretun run exited with %v: %s", err, p.Log())
				}
			}
		})
	}
}

// TestPacketUnderlayFragments sends outer fragments from a tunnel with
// `underlay packet`: fragments have no room for an Ethernet header in
// front of them and go on the raw socket, small packets on the AF_PACKET
// socket, and the far side reassembles and delivers both.
func TestPacketUnderlayFragments(t *testing.T) {
	tp := Classic(t)
	tp.Run(tp.A, "netb", "mode", "gre", "remote", UnderB, "local", UnderA, "mtu", "1500", "nopmtudisc", "underlay", "packet")
	tp.Run(tp.B, "neta", "mode", "gre", "remote", UnderA, "local", UnderB, "mtu", "1500", "nopmtudisc", "underlay", "packet")
	tp.Route(tp.A, "netb", LanA, "203.0.113.0/24")
	tp.Route(tp.B, "neta", LanB, "198.51.100.0/24")
	// Router A knows no MAC address for B at first: those packets go on
	// the raw socket (the kernel resolves it), and after the next
	// resolution, at most a second later, on the packet socket.
	tp.Ping(tp.HostA, HostBIP, "-c", "10")
	tp.Ping(tp.HostA, HostBIP, "-M", "dont", "-s", "1472")
	sa, sb := tp.Stats(tp.A, "netb"), tp.Stats(tp.B, "neta")
	if sa.TxFragmented < 6 {
		t.Errorf("router A sent %d outer fragments, want 2 per ping", sa.TxFragmented)
	}
	if sa.TxPacketSocket < 3 || sb.TxPacketSocket < 3 {
		t.Errorf("tx_packet_socket A %d B %d, want the small pings and replies on AF_PACKET", sa.TxPacketSocket, sb.TxPacketSocket)
	}
	if sb.RxErrors != 0 || sa.RxErrors != 0 {
		t.Errorf("receive errors: A %+v B %+v", sa.Drops, sb.Drops)
	}
}
