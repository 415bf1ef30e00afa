package e2e

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gretun/gretun/internal/testnet"
)

// The IPv6 underlay between the routers, on the same veth as the IPv4 one.
const (
	Under6A = "2001:db8::1"
	Under6B = "2001:db8::2"
)

// underlay6 puts the IPv6 underlay addresses on the routers' wan link.
func (tp *Topology) underlay6() {
	tp.T.Helper()
	tp.must(tp.Net.Addr(tp.A, "wan", Under6A+"/64"))
	tp.must(tp.Net.Addr(tp.B, "wan", Under6B+"/64"))
}

// ip6Tunnels runs netb on A and neta on B over the IPv6 underlay with
// the given words; v4 routes the far IPv4 LANs through them, v6 gives the
// devices 2001:db8:1::1 and ::2.
func (tp *Topology) ip6Tunnels(v4, v6 bool, words ...string) (a, b *Proc) {
	tp.T.Helper()
	a = tp.Run(tp.A, "netb", append([]string{"remote", Under6B, "local", Under6A}, words...)...)
	b = tp.Run(tp.B, "neta", append([]string{"remote", Under6A, "local", Under6B}, words...)...)
	if v4 {
		tp.Route(tp.A, "netb", LanA, "203.0.113.0/24")
		tp.Route(tp.B, "neta", LanB, "198.51.100.0/24")
	}
	if v6 {
		tp.Sh(tp.A, "ip", "-6", "addr", "add", "2001:db8:1::1/64", "dev", "netb", "nodad")
		tp.Sh(tp.B, "ip", "-6", "addr", "add", "2001:db8:1::2/64", "dev", "neta", "nodad")
	}
	return a, b
}

// carry6BothWays pings and transfers 1 MiB both ways between the
// routers' tunnel devices, 2001:db8:1::1 (A) and ::2 (B).
func (tp *Topology) carry6BothWays() {
	tp.T.Helper()
	tp.Ping(tp.A, "2001:db8:1::2")
	tp.Ping(tp.B, "2001:db8:1::1")
	tp.Transfer(tp.A, tp.B, "2001:db8:1::2", 1<<20)
	tp.Transfer(tp.B, tp.A, "2001:db8:1::1", 1<<20)
}

// TestIP6Tunnels is the classic scenario over an IPv6 underlay: ip6gre
// (plain, and with key, checksums and sequence numbers) carries IPv4 from
// host to host and IPv6 between the routers, ipip6 IPv4, ip6ip6 IPv6 and
// mode any both families through one tunnel, with ping and a checksummed TCP transfer both ways; the tunnels show
// their mode and Linux's defaults, and the device MTU leaves room for the
// IPv6 header, the encapsulation limit option and GRE.
func TestIP6Tunnels(t *testing.T) {
	for _, tc := range []struct {
		words  string
		v4, v6 bool
		mtu    int
		show   string
	}{
		{"mode ip6gre", true, true, 1448, "gre/ipv6 remote 2001:db8::2 local 2001:db8::1 hoplimit 64 encaplimit 4"},
		{"mode ip6gre key 42 csum seq", true, true, 1436, "encaplimit 4 key 42 seq csum"},
		{"mode ipip6 encaplimit none", true, false, 1460, "ip/ipv6 remote 2001:db8::2 local 2001:db8::1 hoplimit 64 encaplimit none"},
		{"mode ip6ip6 hoplimit 255 tclass inherit flowlabel inherit", false, true, 1452, "ipv6/ipv6 remote 2001:db8::2 local 2001:db8::1 hoplimit 255 tclass inherit flowlabel inherit encaplimit 4"},
		{"mode any", true, true, 1452, "any/ipv6 remote 2001:db8::2 local 2001:db8::1 hoplimit 64 encaplimit 4"},
	} {
		t.Run(tc.words, func(t *testing.T) {
			tp := Classic(t)
			tp.underlay6()
			tp.ip6Tunnels(tc.v4, tc.v6, strings.Fields(tc.words)...)
			if out, _ := tp.Gretun(tp.A, "tunnel", "show", "netb"); !strings.Contains(out, tc.show) {
				t.Errorf("tunnel show: %q, want it to contain %q", out, tc.show)
			}
			if mtu := tp.status(tp.A, "netb").MTU; mtu != tc.mtu {
				t.Errorf("device MTU %d, want %d", mtu, tc.mtu)
			}
			if tc.v4 {
				tp.carryBothWays()
			}
			if tc.v6 {
				tp.carry6BothWays()
			}
			sa, sb := tp.Stats(tp.A, "netb"), tp.Stats(tp.B, "neta")
			if sa.RxErrors != 0 || sb.RxErrors != 0 || sa.RxPackets == 0 || sb.RxPackets == 0 {
				t.Errorf("counters: A %+v B %+v", sa, sb)
			}
		})
	}
}

// TestIP6Keepalives: ip6gre and ip6gretap keepalives on A only,
// reflected by B's gretun (their inner packet is IPv6), keep A up; once B
// is gone A goes down.
func TestIP6Keepalives(t *testing.T) {
	for _, mode := range []string{"ip6gre", "ip6gretap"} {
		t.Run(mode, func(t *testing.T) {
			tp := Pair(t)
			tp.underlay6()
			tp.Run(tp.A, "netb", "mode", mode, "key", "7", "remote", Under6B, "local", Under6A, "keepalive", kaPeriod, kaRetries)
			b := tp.Run(tp.B, "neta", "mode", mode, "key", "7", "remote", Under6A, "local", Under6B)
			const want = 5
			tp.waitFor(fmt.Sprintf("%d keepalives answered", want), func() bool {
				k := tp.keepalive(tp.A, "netb")
				return k.State == "up" && k.Received >= want
			})
			if s := tp.status(tp.B, "neta"); s.Stats.Reflected < want {
				t.Errorf("B reflected nothing: %+v", s.Stats)
			}
			if err := b.Stop(); err != nil {
				t.Errorf("B exited with %v: %s", err, b.Log())
			}
			tp.waitFor("A down once B is gone", func() bool { return !tp.carrier(tp.A, "netb") })
		})
	}
}

// TestIP6Errors: wrong family, link-local without a device and a second
// ip6tnl tunnel on one address pair are refused in one line and leave
// nothing behind.
func TestIP6Errors(t *testing.T) {
	tp := Classic(t)
	tp.underlay6()
	tp.Start(tp.A, "daemon")
	addWhenReady(tp, tp.A, "t6", "mode", "ip6ip6", "remote", Under6B, "local", Under6A)
	for _, tc := range []struct{ words, want string }{
		{"mode ip6gre remote 192.0.2.2 local 192.0.2.1", "remote 192.0.2.2 is an IPv4 address: mode ip6gre needs IPv6 (use mode gre)"},
		{"mode gre remote 2001:db8::2 local 2001:db8::1", "needs IPv4 (use mode ip6gre)"},
		{"mode ip6gre remote fe80::2 local 2001:db8::1", "link-local"},
		{"mode ip6gre6 remote 2001:db8::2 local 2001:db8::1", `unknown mode "ip6gre6"`},
		{"mode ipip6 remote 2001:db8::2 local 2001:db8::1", "one ip6ip6, ipip6 or any tunnel per address pair"},
		{"mode any remote 2001:db8::2 local 2001:db8::1", "one ip6ip6, ipip6 or any tunnel per address pair"},
		{"mode any remote 2001:db8::3 local 2001:db8::1 encap fou encap-dport 5555", "encap fou needs mode ip6ip6 or ipip6, not any"},
		{"mode ip6gre remote 2001:db8::2 local 2001:db8::9", "local address 2001:db8::9 is not configured"},
	} {
		out, err := tp.Gretun(tp.A, append([]string{"tunnel", "add", "bad"}, strings.Fields(tc.words)...)...)
		if err == nil || !strings.Contains(out, tc.want) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("tunnel add bad %s: %v, %q; want one line with %q", tc.words, err, out, tc.want)
		}
		if _, err := tp.Exec(tp.A, "ip", "link", "show", "dev", "bad"); err == nil {
			t.Errorf("%s: device bad exists after a refused add", tc.words)
		}
	}
}

// TestIP6MinimumMTU runs ip6gre and mode any over an underlay of IPv6's
// minimum MTU, 1280: the device MTU is 1280 all the same (as Linux's ip6
// tunnels make it) and an IPv6 packet of 1280 bytes crosses in outer
// fragments, which the far kernel reassembles (RFC 2473 section 7.1), while
// an IPv4 packet with DF over the path's 1228 (1232 for mode any) is refused
// with that MTU, and one without DF is fragmented before encapsulation.
func TestIP6MinimumMTU(t *testing.T) {
	for _, tc := range []struct {
		mode string
		path int
	}{{"ip6gre", 1280 - 52}, {"any", 1280 - 48}} {
		t.Run(tc.mode, func(t *testing.T) {
			tp := Classic(t)
			tp.underlay6()
			for _, ns := range []string{tp.A, tp.B} {
				tp.Sh(ns, "ip", "link", "set", "dev", "wan", "mtu", "1280")
			}
			tp.ip6Tunnels(true, true, "mode", tc.mode)
			if mtu := tp.status(tp.A, "netb").MTU; mtu != 1280 {
				t.Errorf("device MTU %d over a 1280-byte underlay, want 1280", mtu)
			}
			tp.Ping(tp.A, "2001:db8:1::2", "-s", "1232", "-M", "do") // 1280-byte IPv6 packets
			if s := tp.Stats(tp.A, "netb"); s.TxFragmented < 6 {
				t.Errorf("A sent %d outer fragments for 3 pings of 1280 bytes, want 2 each", s.TxFragmented)
			}
			out, _ := tp.Exec(tp.HostA, "ping", "-c", "1", "-W", "2", "-M", "do", "-s", strconv.Itoa(tc.path+1-28), HostBIP)
			if !strings.Contains(out, fmt.Sprintf("mtu = %d", tc.path)) && !strings.Contains(out, fmt.Sprintf("mtu=%d", tc.path)) {
				t.Errorf("DF ping of %d bytes over a %d-byte path: %s", tc.path+1, tc.path, out)
			}
			tp.Ping(tp.HostA, HostBIP, "-s", "1250", "-M", "dont")
		})
	}
}

// TestIP6PacketTooBig puts a router with a 1300-byte link between the
// tunnel's ends: its ICMPv6 Packet Too Big about gretun's outer packets
// lowers the tunnel's path MTU to 1300 less the overhead (52 for ip6gre,
// 48 for mode any, whose IPv4 packets go out as next header 4), and the
// inner sender learns it from gretun's Fragmentation Needed.
func TestIP6PacketTooBig(t *testing.T) {
	for _, tc := range []struct {
		mode     string
		overhead int
	}{{"ip6gre", 52}, {"any", 48}} {
		t.Run(tc.mode, func(t *testing.T) {
			tp := narrow6(t)
			tp.Sh(tp.HostA, "ip", "route", "add", "default", "via", LanA)
			tp.Run(tp.A, "netb", "mode", tc.mode, "remote", "2001:db8:b::1", "local", "2001:db8:a::1")
			tp.Run(tp.B, "neta", "mode", tc.mode, "remote", "2001:db8:a::1", "local", "2001:db8:b::1")
			tp.Sh(tp.B, "ip", "addr", "add", LanB, "dev", "neta")
			tp.Sh(tp.B, "ip", "route", "add", "198.51.100.0/24", "dev", "neta")
			tp.Sh(tp.A, "ip", "route", "add", LanB+"/32", "dev", "netb")
			// A full-size DF ping leaves A whole, meets the narrow link and comes
			// back as a Packet Too Big to A's gretun.
			tp.Exec(tp.HostA, "ping", "-c", "1", "-W", "1", "-M", "do", "-s", "1420", LanB)
			mtu := 1300 - tc.overhead
			tp.waitFor("path MTU learnt", func() bool { return tp.status(tp.A, "netb").PathMTU == mtu })
			out, _ := tp.Exec(tp.HostA, "ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1400", LanB)
			if !strings.Contains(out, fmt.Sprintf("mtu = %d", mtu)) && !strings.Contains(out, fmt.Sprintf("mtu=%d", mtu)) {
				t.Errorf("DF ping over the learnt path: %s", out)
			}
			tp.Ping(tp.HostA, LanB, "-s", "1200", "-M", "do")
		})
	}
}

// narrow6 is host A, router A, a router m and router B over IPv6
// (2001:db8:a::/64 between A and m, 2001:db8:b::/64 between m and B),
// the link from m to B and B's end of it 1300 bytes: m answers larger
// packets toward B with ICMPv6 Packet Too Big.
func narrow6(t *testing.T) *Topology {
	n := testnet.ForTest(t)
	tp := &Topology{Net: n, T: t}
	var m string
	var err error
	for _, p := range []struct {
		dst  *string
		name string
	}{{&tp.HostA, "ha"}, {&tp.A, "ra"}, {&m, "rm"}, {&tp.B, "rb"}} {
		if *p.dst, err = n.NS(p.name); err != nil {
			t.Fatal(err)
		}
	}
	tp.must(n.Veth(tp.HostA, "eth0", tp.A, "lan"))
	tp.must(n.Veth(tp.A, "wan", m, "a"))
	tp.must(n.Veth(m, "b", tp.B, "wan"))
	tp.must(n.Addr(tp.HostA, "eth0", HostAIP+"/24"))
	tp.must(n.Addr(tp.A, "lan", LanA+"/24"))
	tp.must(n.Addr(tp.A, "wan", "2001:db8:a::1/64"))
	tp.must(n.Addr(m, "a", "2001:db8:a::2/64"))
	tp.must(n.Addr(m, "b", "2001:db8:b::2/64"))
	tp.must(n.Addr(tp.B, "wan", "2001:db8:b::1/64"))
	tp.must(n.Forward(tp.A))
	tp.must(n.Forward(m))
	tp.Sh(m, "ip", "link", "set", "dev", "b", "mtu", "1300")
	tp.Sh(tp.B, "ip", "link", "set", "dev", "wan", "mtu", "1300")
	tp.Sh(tp.A, "ip", "-6", "route", "add", "2001:db8:b::/64", "via", "2001:db8:a::2")
	tp.Sh(tp.B, "ip", "-6", "route", "add", "2001:db8:a::/64", "via", "2001:db8:b::2")
	return tp
}

// TestIP6LinkLocal runs ip6gre between link-local addresses, which need
// the device of their link (dev): packets leave by it, the MTU is its own,
// and both families cross.
func TestIP6LinkLocal(t *testing.T) {
	tp := Classic(t)
	tp.must(tp.Net.Addr(tp.A, "wan", "fe80::a/64"))
	tp.must(tp.Net.Addr(tp.B, "wan", "fe80::b/64"))
	tp.Run(tp.A, "netb", "mode", "ip6gre", "remote", "fe80::b", "local", "fe80::a", "dev", "wan")
	tp.Run(tp.B, "neta", "mode", "ip6gre", "remote", "fe80::a%wan", "local", "fe80::b")
	tp.Route(tp.A, "netb", LanA, "203.0.113.0/24")
	tp.Route(tp.B, "neta", LanB, "198.51.100.0/24")
	if out, _ := tp.Gretun(tp.B, "tunnel", "show", "neta"); !strings.Contains(out, "remote fe80::a local fe80::b dev wan hoplimit 64 encaplimit 4") {
		t.Errorf("tunnel show: %q", out)
	}
	if mtu := tp.status(tp.A, "netb").MTU; mtu != 1448 {
		t.Errorf("device MTU %d, want 1448", mtu)
	}
	tp.Ping(tp.HostA, HostBIP)
	tp.Transfer(tp.HostA, tp.HostB, HostBIP, 1<<20)
}

// TestIP6HostilePackets sends router A, from B's namespace through a raw
// IPv6 socket of its own, GRE packets that claim to be netb's but are
// unusable: a protocol type that is not the inner packet's version,
// reserved bits, a destination option whose action bits say discard, and
// a key no tunnel has. gretun drops and counts each kind (the kernel
// drops the option itself, before any socket), and writes nothing to
// its device.
func TestIP6HostilePackets(t *testing.T) {
	tp := Classic(t)
	tp.underlay6()
	tp.Start(tp.A, "daemon")
	addWhenReady(tp, tp.A, "netb", "mode", "ip6gre", "remote", Under6B, "local", Under6A)
	before := tp.Stats(tp.A, "netb")
	unmatched := tp.unmatched(tp.A)
	in6 := []byte{0x60, 0, 0, 0, 0, 0, 59, 64, 0x20, 1, 0x0d, 0xb8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x20, 1, 0x0d, 0xb8, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	send := func(dstopts []byte, payload []byte, n int) {
		t.Helper()
		err := testnet.InNS(tp.B, func() error {
			fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW, 47)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			if dstopts != nil {
				if err := unix.SetsockoptString(fd, unix.IPPROTO_IPV6, unix.IPV6_DSTOPTS, string(dstopts)); err != nil {
					return err
				}
			}
			to := &unix.SockaddrInet6{Addr: netip.MustParseAddr(Under6A).As16()}
			for range n {
				if err := unix.Sendto(fd, payload, 0, to); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	send(nil, append([]byte{0, 0, 0x08, 0x00}, in6...), 3)                               // says IPv4, carries IPv6
	send(nil, append([]byte{0x08, 0, 0x86, 0xdd}, in6...), 2)                            // a reserved bit (RFC 2784 bits 1-5)
	send([]byte{0, 0, 0x9e, 2, 0, 0, 1, 0}, append([]byte{0, 0, 0x86, 0xdd}, in6...), 2) // an option to discard
	send(nil, append([]byte{0x20, 0, 0x86, 0xdd, 0, 0, 0, 9}, in6...), 4)                // key 9: no such tunnel
	var s = before
	tp.waitFor("the drops counted", func() bool {
		s = tp.Stats(tp.A, "netb")
		return s.Drops["inner-version"]-before.Drops["inner-version"] >= 3 && s.Drops["gre-reserved-bits"]-before.Drops["gre-reserved-bits"] >= 2 &&
			tp.unmatched(tp.A)-unmatched >= 4
	})
	if d := s.RxPackets - before.RxPackets; d != 0 {
		t.Errorf("gretun wrote %d of them to its device", d)
	}
	if d := s.RxErrors - before.RxErrors; d != 5 {
		t.Errorf("%d receive errors, want 5 (the discard option never reaches gretun): %v", d, s.Drops)
	}
}
