package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// twoLinks builds two routers joined by two links, wan and wan2 (MTU
// 1400), whose tunnel endpoints are addresses on their loopback devices,
// 198.51.100.1 and 203.0.113.1 (2001:db8:1::1 and 2001:db8:2::1), routed
// over wan and, with a worse metric, over wan2: the routing table sends
// everything by wan, and only a tunnel bound to wan2 (`dev wan2`) leaves
// by it.
func twoLinks(t *testing.T) *Topology {
	t.Helper()
	tp := Pair(t) // wan: 192.0.2.1 and .2 on /24, which wan2's /25 splits
	for _, side := range []struct{ ns, wan6, self, self6, far, far6, farWan, farWan6 string }{
		{tp.A, "2001:db8:a::1/64", "198.51.100.1/32", "2001:db8:1::1/128", "203.0.113.1", "2001:db8:2::1", "192.0.2.2", "2001:db8:a::2"},
		{tp.B, "2001:db8:a::2/64", "203.0.113.1/32", "2001:db8:2::1/128", "198.51.100.1", "2001:db8:1::1", "192.0.2.1", "2001:db8:a::1"},
	} {
		tp.Sh(side.ns, "ip", "addr", "add", side.wan6, "dev", "wan", "nodad")
		tp.Sh(side.ns, "ip", "addr", "add", side.self, "dev", "lo")
		tp.Sh(side.ns, "ip", "addr", "add", side.self6, "dev", "lo")
		tp.Sh(side.ns, "ip", "route", "add", side.far, "via", side.farWan, "dev", "wan", "metric", "10")
		tp.Sh(side.ns, "ip", "-6", "route", "add", side.far6, "via", side.farWan6, "dev", "wan", "metric", "10")
	}
	tp.addWan2()
	return tp
}

// addWan2 links twoLinks' routers by wan2, with its addresses and its
// routes to the far end.
func (tp *Topology) addWan2() {
	tp.T.Helper()
	tp.must(tp.Net.Veth(tp.A, "wan2", tp.B, "wan2"))
	for _, side := range []struct{ ns, wan2, wan26, far, far6, farWan2, farWan26 string }{
		{tp.A, "192.0.2.129/25", "2001:db8:b::1/64", "203.0.113.1", "2001:db8:2::1", "192.0.2.130", "2001:db8:b::2"},
		{tp.B, "192.0.2.130/25", "2001:db8:b::2/64", "198.51.100.1", "2001:db8:1::1", "192.0.2.129", "2001:db8:b::1"},
	} {
		tp.must(tp.Net.Addr(side.ns, "wan2", side.wan2))
		tp.Sh(side.ns, "ip", "addr", "add", side.wan26, "dev", "wan2", "nodad")
		tp.Sh(side.ns, "ip", "link", "set", "wan2", "mtu", "1400")
		tp.Sh(side.ns, "ip", "route", "add", side.far, "via", side.farWan2, "dev", "wan2", "metric", "100")
		tp.Sh(side.ns, "ip", "-6", "route", "add", side.far6, "via", side.farWan26, "dev", "wan2", "metric", "100")
	}
}

// txPackets reads the kernel's transmit packet counter of dev in ns.
func (tp *Topology) txPackets(ns, dev string) uint64 { return tp.linkStat(ns, dev, "tx_packets") }

// TestDevBinding: a tunnel with `dev wan2` sends its outer packets out of
// wan2, which the routing table would not pick, and takes its MTU from
// wan2's route (1400), as the kernel binds a tunnel to its link; the far
// end, not bound, answers over wan. Over raw IPv4 and IPv6 sockets, inside
// UDP over IPv4 (IP_PKTINFO), and on the AF_PACKET path.
// The rows without dev show that the table's choice is wan, so the test
// fails when dev is ignored.
func TestDevBinding(t *testing.T) {
	for _, tc := range []struct {
		name       string
		v6         bool
		words      []string
		dev        bool
		mtu        int // the tunnel device's
		wantOnWan2 bool
	}{
		{"gre", false, []string{"mode", "gre"}, true, 1376, true},
		{"gre/no-dev", false, []string{"mode", "gre"}, false, 1476, false},
		{"ip6gre", true, []string{"mode", "ip6gre"}, true, 1348, true},
		{"ip6gre/no-dev", true, []string{"mode", "ip6gre"}, false, 1448, false},
		{"gre/fou", false, []string{"mode", "gre", "encap", "fou", "encap-dport", "4754"}, true, 1368, true},
		{"ipip/packet", false, []string{"mode", "ipip", "underlay", "packet"}, true, 1380, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := twoLinks(t)
			selfA, selfB := "198.51.100.1", "203.0.113.1"
			if tc.v6 {
				selfA, selfB = "2001:db8:1::1", "2001:db8:2::1"
			}
			wordsA := append([]string{"remote", selfB, "local", selfA}, tc.words...)
			if tc.dev {
				wordsA = append(wordsA, "dev", "wan2")
			}
			tp.Run(tp.A, "netb", wordsA...)
			tp.Run(tp.B, "neta", append([]string{"remote", selfA, "local", selfB}, tc.words...)...)
			tp.Sh(tp.A, "ip", "addr", "add", "198.51.100.129", "peer", "203.0.113.129", "dev", "netb")
			tp.Sh(tp.B, "ip", "addr", "add", "203.0.113.129", "peer", "198.51.100.129", "dev", "neta")

			if mtu := tp.status(tp.A, "netb").MTU; mtu != tc.mtu {
				t.Errorf("device MTU %d, want %d", mtu, tc.mtu)
			}
			if tc.dev {
				if out, _ := tp.Gretun(tp.A, "tunnel", "show", "netb"); !strings.Contains(out, "local 198.51.100.1 dev wan2 ") && !strings.Contains(out, "local 2001:db8:1::1 dev wan2 ") {
					t.Errorf("tunnel show does not name the device: %q", out)
				}
			}
			tp.Ping(tp.A, "203.0.113.129") // resolves the neighbours first
			wan, wan2 := tp.txPackets(tp.A, "wan"), tp.txPackets(tp.A, "wan2")
			tp.Ping(tp.A, "203.0.113.129", "-c", "20", "-i", "0.01")
			dWan, dWan2 := tp.txPackets(tp.A, "wan")-wan, tp.txPackets(tp.A, "wan2")-wan2
			on, off := dWan2, dWan
			if !tc.wantOnWan2 {
				on, off = dWan, dWan2
			}
			if on < 20 || off >= 20 {
				t.Errorf("A sent %d packets on wan and %d on wan2 during 20 pings, want the tunnel's on %s", dWan, dWan2, map[bool]string{true: "wan2", false: "wan"}[tc.wantOnWan2])
			}
			if tc.dev {
				// MTU-sized packets fit wan2's 1400 bytes, with DF.
				tp.Ping(tp.A, "203.0.113.129", "-M", "do", "-s", fmt.Sprint(tc.mtu-28))
				tp.Transfer(tp.A, tp.B, "203.0.113.129", 1<<20)
			}
			// (An ipip device counts the IPv6 its kernel sends into it as bad
			// inner packets, which are tx errors.)
			if s := tp.Stats(tp.A, "netb"); s.TxErrors != s.TxBadInner {
				t.Errorf("tx errors: %+v", s)
			}
		})
	}
}

// TestDevMissing: `dev` naming no device is refused in one line and
// creates nothing, as iproute2's "Cannot find device".
func TestDevMissing(t *testing.T) {
	tp := twoLinks(t)
	wantError(t, "run with a missing dev", tp.G(tp.A, "run", "netb", "mode", "gre", "remote", "203.0.113.1", "local", "198.51.100.1", "dev", "wan9"), "dev wan9: no such device")
	wantError(t, "dev inside UDP over IPv6", tp.G(tp.A, "run", "netb", "mode", "ip6gre", "remote", "2001:db8:2::1", "local", "2001:db8:1::1", "dev", "wan2", "encap", "fou"), "encap fou over IPv6 takes no dev")
	if links := tp.Sh(tp.A, "ip", "-o", "link", "show"); strings.Contains(links, "netb") {
		t.Errorf("a device was left behind: %s", links)
	}
}

// TestDevChange: `tunnel change` keeps a tunnel's dev when other words
// change and moves it to another device, its MTU following.
func TestDevChange(t *testing.T) {
	tp := twoLinks(t)
	tp.Run(tp.A, "netb", "mode", "gre", "remote", "203.0.113.1", "local", "198.51.100.1", "dev", "wan2")
	tp.Run(tp.B, "neta", "mode", "gre", "remote", "198.51.100.1", "local", "203.0.113.1")
	tp.Sh(tp.A, "ip", "addr", "add", "198.51.100.129", "peer", "203.0.113.129", "dev", "netb")
	tp.Sh(tp.B, "ip", "addr", "add", "203.0.113.129", "peer", "198.51.100.129", "dev", "neta")
	sends := func(dev string, mtu int) {
		t.Helper()
		if got := tp.status(tp.A, "netb").MTU; got != mtu {
			t.Errorf("device MTU %d, want %d", got, mtu)
		}
		tp.Ping(tp.A, "203.0.113.129")
		before := tp.txPackets(tp.A, dev)
		tp.Ping(tp.A, "203.0.113.129", "-c", "20", "-i", "0.01")
		if d := tp.txPackets(tp.A, dev) - before; d < 20 {
			t.Errorf("A sent %d packets on %s during 20 pings, want the tunnel's there", d, dev)
		}
	}
	for _, step := range []struct {
		words []string
		dev   string
		mtu   int
	}{
		{nil, "wan2", 1376},
		{[]string{"ttl", "64"}, "wan2", 1376}, // dev kept
		{[]string{"dev", "wan"}, "wan", 1476},
		{[]string{"dev", "wan2"}, "wan2", 1376},
	} {
		if step.words != nil {
			if r := tp.G(tp.A, append([]string{"tunnel", "change", "netb"}, step.words...)...); r.code != 0 {
				t.Fatalf("tunnel change %v: %s", step.words, r.stderr)
			}
		}
		sends(step.dev, step.mtu)
	}
	wantError(t, "tunnel change to a missing dev", tp.G(tp.A, "tunnel", "change", "netb", "dev", "wan9"), "dev wan9: no such device")
	sends("wan2", 1376) // unchanged

	// The device goes: the tunnel's packets go nowhere else, counted as
	// no route; it comes back with another index, and they follow it.
	tp.Sh(tp.A, "ip", "link", "del", "wan2")
	noRoute := tp.Stats(tp.A, "netb").TxNoRoute
	tp.Exec(tp.A, "ping", "-c", "3", "-i", "0.1", "-W", "1", "203.0.113.129")
	if d := tp.Stats(tp.A, "netb").TxNoRoute - noRoute; d < 3 {
		t.Errorf("%d pings' packets counted as no route with dev wan2 gone, want 3", d)
	}
	tp.addWan2()
	tp.waitFor("the tunnel MTU back to wan2's", func() bool { return tp.status(tp.A, "netb").MTU == 1376 })
	sends("wan2", 1376)
}

// TestFwMark: a tunnel with `fwmark 42` has its outer packets routed by
// the rule for mark 42 (`ip rule add fwmark 42 table 100`, whose table
// sends the far end's address by wan2, which the main table does not),
// and takes its MTU from that route, as the kernel's tunnels look up their
// route with their fwmark; over raw IPv4 and IPv6 sockets and inside UDP
// over both. The gre row of TestDevBinding without dev shows the main
// table's choice is wan.
func TestFwMark(t *testing.T) {
	for _, tc := range []struct {
		name  string
		v6    bool
		words []string
		mtu   int
	}{
		{"gre", false, []string{"mode", "gre"}, 1376},
		{"ip6gre", true, []string{"mode", "ip6gre"}, 1348},
		{"gre/fou", false, []string{"mode", "gre", "encap", "fou", "encap-dport", "4754"}, 1368},
		{"ip6gre/fou", true, []string{"mode", "ip6gre", "encap", "fou", "encap-dport", "4754"}, 1340},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := twoLinks(t)
			selfA, selfB := "198.51.100.1", "203.0.113.1"
			if tc.v6 {
				selfA, selfB = "2001:db8:1::1", "2001:db8:2::1"
			}
			tp.Sh(tp.A, "ip", "rule", "add", "fwmark", "42", "table", "100")
			tp.Sh(tp.A, "ip", "-6", "rule", "add", "fwmark", "42", "table", "100")
			tp.Sh(tp.A, "ip", "route", "add", "203.0.113.1", "via", "192.0.2.130", "dev", "wan2", "table", "100")
			tp.Sh(tp.A, "ip", "-6", "route", "add", "2001:db8:2::1", "via", "2001:db8:b::2", "dev", "wan2", "table", "100")
			tp.Run(tp.A, "netb", append([]string{"remote", selfB, "local", selfA, "fwmark", "42"}, tc.words...)...)
			tp.Run(tp.B, "neta", append([]string{"remote", selfA, "local", selfB}, tc.words...)...)
			tp.Sh(tp.A, "ip", "addr", "add", "198.51.100.129", "peer", "203.0.113.129", "dev", "netb")
			tp.Sh(tp.B, "ip", "addr", "add", "203.0.113.129", "peer", "198.51.100.129", "dev", "neta")
			if mtu := tp.status(tp.A, "netb").MTU; mtu != tc.mtu {
				t.Errorf("device MTU %d, want %d (the marked route's)", mtu, tc.mtu)
			}
			if out, _ := tp.Gretun(tp.A, "tunnel", "show", "netb"); !strings.Contains(out, " fwmark 0x2a") {
				t.Errorf("tunnel show does not give the mark: %q", out)
			}
			// netfilter sees the mark on the outer packets.
			tp.Sh(tp.A, "nft", "add", "table", "inet", "gtmark")
			tp.Sh(tp.A, "nft", "add", "counter", "inet", "gtmark", "marked")
			tp.Sh(tp.A, "nft", "add", "chain", "inet", "gtmark", "out", "{ type filter hook output priority 0; }")
			tp.Sh(tp.A, "nft", "add", "rule", "inet", "gtmark", "out", "meta", "mark", "42", "counter", "name", "marked")
			tp.Ping(tp.A, "203.0.113.129")
			wan, wan2, marked := tp.txPackets(tp.A, "wan"), tp.txPackets(tp.A, "wan2"), tp.nftCounterIn(tp.A, "gtmark", "marked")
			tp.Ping(tp.A, "203.0.113.129", "-c", "20", "-i", "0.01")
			if dWan, dWan2 := tp.txPackets(tp.A, "wan")-wan, tp.txPackets(tp.A, "wan2")-wan2; dWan2 < 20 || dWan >= 20 {
				t.Errorf("A sent %d packets on wan and %d on wan2 during 20 pings, want the tunnel's on wan2", dWan, dWan2)
			}
			if d := tp.nftCounterIn(tp.A, "gtmark", "marked") - marked; d < 20 {
				t.Errorf("netfilter saw %d packets marked 42 during 20 pings", d)
			}
			tp.Transfer(tp.A, tp.B, "203.0.113.129", 1<<20)

			// The classic use: a default route through the tunnel, and no
			// other route to the far end in the main table. Unmarked, the
			// outer packets would loop into netb; marked, table 100 sends
			// them by wan2.
			far, family := selfB, "-4"
			if tc.v6 {
				family = "-6"
			}
			tp.Sh(tp.A, "ip", family, "route", "del", far, "dev", "wan")
			tp.Sh(tp.A, "ip", family, "route", "del", far, "dev", "wan2")
			tp.Sh(tp.A, "ip", family, "route", "add", "default", "dev", "netb")
			tp.Ping(tp.A, "203.0.113.129")
			if s := tp.Stats(tp.A, "netb"); s.TxErrors != 0 || s.TxDeadLoop != 0 {
				t.Errorf("tx errors: %+v", s)
			}
		})
	}
}
