package config

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gretun/gretun/encap"
)

// TestParseSIT reads a tunnel broker's `ip tunnel add he-ipv6 mode sit
// remote R local L ttl 255` and the names `ip tunnel` and `ip link` give
// the mode, and checks what the tunnel sends: IPv6 straight in IPv4
// (protocol 41, 20 bytes: MTU 1480 on 1500), or inside UDP with encap fou
// (28: 1472).
func TestParseSIT(t *testing.T) {
	broker := netip.MustParseAddr("203.0.113.1")
	want := Tunnel{Name: "he-ipv6", Mode: ModeSIT, Remote: broker, Local: a1, TTL: 255, DF: DFSet}
	for _, mode := range []string{"sit", "ipv6/ip", "ip6ip", "ipv6/ipv4"} {
		got, err := Parse("he-ipv6", strings.Fields("mode "+mode+" remote 203.0.113.1 local 192.0.2.1 ttl 255"))
		if err != nil {
			t.Fatalf("mode %s: %v", mode, err)
		}
		if diff := cmp.Diff(want, got, addrs); diff != "" {
			t.Errorf("mode %s (-want +got):\n%s", mode, diff)
		}
	}
	c := want
	if got, want := c.String(), "he-ipv6: ipv6/ip remote 203.0.113.1 local 192.0.2.1 ttl 255"; got != want {
		t.Errorf("String() = %q, want %q (as ip tunnel show)", got, want)
	}
	if c.Mode.IPv6() || c.Mode.GRE() || c.Proto() != 41 || c.Encap().Mode != encap.ModeIP6 || c.Overhead() != 20 || !c.NeedsNetRaw() {
		t.Errorf("sit: IPv6 underlay %v, GRE %v, protocol %d, encap %v, overhead %d, needs CAP_NET_RAW %v; want false, false, 41, ip6, 20, true",
			c.Mode.IPv6(), c.Mode.GRE(), c.Proto(), c.Encap().Mode, c.Overhead(), c.NeedsNetRaw())
	}
	fou, err := Parse("s", strings.Fields("mode sit remote 192.0.2.2 local 192.0.2.1 encap fou encap-dport 5556"))
	if err != nil {
		t.Fatal(err)
	}
	if fou.Overhead() != 28 || fou.NeedsNetRaw() || fou.DstPort() != 5556 || fou.LocalPort() != 5556 {
		t.Errorf("sit in UDP: overhead %d, needs CAP_NET_RAW %v, ports %d and %d; want 28, false, 5556, 5556",
			fou.Overhead(), fou.NeedsNetRaw(), fou.DstPort(), fou.LocalPort())
	}
	for _, words := range []string{
		"mode sit remote 203.0.113.1 local 192.0.2.1 ttl 255",
		"mode sit remote 192.0.2.2 local 192.0.2.1",
		"mode sit remote 192.0.2.2 local 192.0.2.1 tos inherit nopmtudisc mtu 1280 clamp-mss",
		"mode sit remote 192.0.2.2 local 192.0.2.1 ttl 64 tos 0x10 ignore-df underlay packet",
		"mode sit remote 192.0.2.2 local 192.0.2.1 encap fou encap-dport 5556 noencap-csum",
	} {
		c, err := Parse("s", strings.Fields(words))
		if err != nil {
			t.Fatalf("%q: %v", words, err)
		}
		roundTrip(t, c)
	}
}

// TestParseSITErrors: sit takes the words of IPv4 tunnels; GRE's and IPv6
// underlays' are refused, and so is a tunnel without a remote (6to4 and
// ISATAP), each with one line naming the problem.
func TestParseSITErrors(t *testing.T) {
	const pair = " remote 192.0.2.2 local 192.0.2.1"
	for _, tc := range []struct{ words, want string }{
		{"mode sit" + pair + " key 1", "keys need mode gre"},
		{"mode sit" + pair + " ikey 1", "keys need mode gre"},
		{"mode sit" + pair + " csum", "csum needs mode gre"},
		{"mode sit" + pair + " seq", "seq needs mode gre"},
		{"mode sit" + pair + " keepalive", "keepalive needs mode gre"},
		{"mode sit local 192.0.2.1", "missing remote address (mode sit needs one: remote any, for 6to4 or ISATAP, is not supported)"},
		{"mode sit remote any local 192.0.2.1", "remote any, for 6to4 or ISATAP, is not supported"},
		{"mode sit remote 2001:db8::2 local 2001:db8::1", "remote 2001:db8::2 is an IPv6 address: mode sit needs IPv4 (use mode ip6ip6)"},
		{"mode ip6ip6 remote 192.0.2.2 local 192.0.2.1", "mode ip6ip6 needs IPv6 (use mode sit)"},
		{"mode sit" + pair + " encaplimit 4", "encaplimit needs an IPv6 mode"},
		{"mode sit" + pair + " flowlabel 1", "flowlabel needs an IPv6 mode"},
		{"mode sit" + pair + " encap fou", "encap fou with mode sit needs encap-dport"},
		{"mode sit" + pair + " mtu 1279", "invalid mtu 1279 (want 1280-65515)"},
		{"mode sit" + pair + " mtu 65516", "invalid mtu 65516 (want 1280-65515)"},
		{"mode sit" + pair + " ttl 255 nopmtudisc", "ttl != 0 and nopmtudisc are incompatible"},
		{"mode ip6ip6 remote 2001:db8::2 local 2001:db8::1 mtu 1000", "invalid mtu 1000 (want 1280-"}, // as ip6_tnl_change_mtu
		{"mode isatap" + pair, `unknown mode "isatap"`},
	} {
		checkParseError(t, "s", tc.words, tc.want)
	}
}
