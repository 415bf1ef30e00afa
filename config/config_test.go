package config

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gretun/gretun/decap"
	"github.com/gretun/gretun/encap"
)

var (
	a1 = netip.MustParseAddr("192.0.2.1")
	a2 = netip.MustParseAddr("192.0.2.2")
)

// addrs compares netip.Addr values by value.
var addrs = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// base is the words every case below starts with.
var base = []string{"mode", "gre", "remote", "192.0.2.2", "local", "192.0.2.1"}

func TestParse(t *testing.T) {
	gre := Tunnel{Name: "netb", Mode: ModeGRE, Local: a1, Remote: a2, DF: DFSet}
	with := func(f func(*Tunnel)) Tunnel {
		c := gre
		f(&c)
		return c
	}
	for _, tc := range []struct {
		words string // after base
		want  Tunnel
	}{
		{"", gre},
		{"ttl 255", with(func(c *Tunnel) { c.TTL = 255 })},
		{"ttl 255 ttl inherit", gre},
		{"hoplimit 7", with(func(c *Tunnel) { c.TTL = 7 })},
		{"tos 0x10", with(func(c *Tunnel) { c.TOS = 0x10 })},
		{"tos 1e", with(func(c *Tunnel) { c.TOS = 0x1e })}, // hex without prefix, as iproute2
		{"tos inherit", with(func(c *Tunnel) { c.TOSInherit = true })},
		// An odd value is the kernel's inherit flag, whatever else is set.
		{"tos 1", with(func(c *Tunnel) { c.TOSInherit = true })},
		{"tos 0x11", with(func(c *Tunnel) { c.TOSInherit = true })},
		{"tos 1f", with(func(c *Tunnel) { c.TOSInherit = true })},
		{"tos 0x11 tos 0x10", with(func(c *Tunnel) { c.TOS = 0x10 })},
		{"dsfield inherit tos 0x20", with(func(c *Tunnel) { c.TOS = 0x20 })},
		{"key 42", with(func(c *Tunnel) { c.IKey, c.HasIKey, c.OKey, c.HasOKey = 42, true, 42, true })},
		{"key 0", with(func(c *Tunnel) { c.HasIKey, c.HasOKey = true, true })},
		{"key 4294967295", with(func(c *Tunnel) { c.IKey, c.HasIKey, c.OKey, c.HasOKey = 1<<32-1, true, 1<<32-1, true })},
		{"key 1.2.3.4", with(func(c *Tunnel) { c.IKey, c.HasIKey, c.OKey, c.HasOKey = 0x01020304, true, 0x01020304, true })},
		{"ikey 1 okey 0x2", with(func(c *Tunnel) { c.IKey, c.HasIKey, c.OKey, c.HasOKey = 1, true, 2, true })},
		{"ikey 1", with(func(c *Tunnel) { c.IKey, c.HasIKey = 1, true })},
		{"key 5 nokey", gre},
		{"dev wan2", with(func(c *Tunnel) { c.Dev = "wan2" })},
		{"fwmark 42", with(func(c *Tunnel) { c.FwMark = 42 })},
		{"fwmark 0x2a", with(func(c *Tunnel) { c.FwMark = 42 })},
		{"fwmark 4294967295", with(func(c *Tunnel) { c.FwMark = 1<<32 - 1 })},
		{"fwmark 7 fwmark 0", gre},
		{"csum", with(func(c *Tunnel) { c.ICsum, c.OCsum = true, true })},
		{"icsum", with(func(c *Tunnel) { c.ICsum = true })},
		{"ocsum", with(func(c *Tunnel) { c.OCsum = true })},
		{"csum nocsum", gre},
		{"seq", with(func(c *Tunnel) { c.ISeq, c.OSeq = true, true })},
		{"iseq", with(func(c *Tunnel) { c.ISeq = true })},
		{"oseq", with(func(c *Tunnel) { c.OSeq = true })},
		{"seq noseq", gre},
		// pmtudisc is the default, as `ip tunnel add`'s.
		{"pmtudisc", gre},
		{"nopmtudisc", with(func(c *Tunnel) { c.DF = DFInherit })},
		{"inherit-df", with(func(c *Tunnel) { c.DF = DFInherit })},
		{"nopmtudisc pmtudisc", gre},
		{"ignore-df", with(func(c *Tunnel) { c.DF = DFIgnore })},
		{"ignore-df noignore-df", with(func(c *Tunnel) { c.DF = DFInherit })},
		{"pmtudisc noignore-df", gre},
		{"ttl 64 pmtudisc", with(func(c *Tunnel) { c.TTL = 64 })},
		{"ttl inherit nopmtudisc", with(func(c *Tunnel) { c.DF = DFInherit })},
		{"mtu 1400", with(func(c *Tunnel) { c.MTU = 1400 })},
		{"mtu 0", gre},
		{"keepalive", with(func(c *Tunnel) { c.KeepalivePeriod, c.KeepaliveRetries = 10*time.Second, 3 })},
		{"keepalive 5", with(func(c *Tunnel) { c.KeepalivePeriod, c.KeepaliveRetries = 5*time.Second, 3 })},
		{"keepalive 0.5 4", with(func(c *Tunnel) { c.KeepalivePeriod, c.KeepaliveRetries = 500*time.Millisecond, 4 })},
		{"keepalive 200ms 2 ttl 9", with(func(c *Tunnel) { c.KeepalivePeriod, c.KeepaliveRetries, c.TTL = 200*time.Millisecond, 2, 9 })},
		{"keepalive nokeepalive", gre},
		{"clamp-mss", with(func(c *Tunnel) { c.ClampMSS = true })},
		{"clamp-mss 1360", with(func(c *Tunnel) { c.ClampMSS, c.MSS = true, 1360 })},
		{"clamp-mss 1360 noclamp-mss", gre},
		{"underlay packet", with(func(c *Tunnel) { c.Underlay = UnderlayPacket })},
		{"underlay raw", gre},
		{"underlay packet underlay raw", gre},
		{"noreflect", with(func(c *Tunnel) { c.NoReflect = true })},
		{"noreflect reflect", gre},
	} {
		words := append(append([]string{}, base...), strings.Fields(tc.words)...)
		got, err := Parse("netb", words)
		if err != nil {
			t.Errorf("%q: %v", tc.words, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, addrs); diff != "" {
			t.Errorf("%q: (-want +got)\n%s", tc.words, diff)
		}
	}
	// Mode aliases as ip tunnel prints them.
	for in, want := range map[string]Mode{"gre": ModeGRE, "gre/ip": ModeGRE, "ipip": ModeIPIP, "ipip/ip": ModeIPIP, "ip/ip": ModeIPIP} {
		got, err := Parse("x", []string{"mode", in, "remote", "192.0.2.2", "local", "192.0.2.1"})
		if err != nil || got.Mode != want {
			t.Errorf("mode %s: got %q, %v; want %q", in, got.Mode, err, want)
		}
	}
	// And as ip -6 tunnel prints and takes them.
	for in, want := range map[string]Mode{"ip6gre": ModeIP6GRE, "gre/ipv6": ModeIP6GRE, "ip6ip6": ModeIP6IP6, "ipv6/ipv6": ModeIP6IP6,
		"ipip6": ModeIPIP6, "ip4ip6": ModeIPIP6, "ip/ipv6": ModeIPIP6, "ipv4/ipv6": ModeIPIP6, "any": ModeIP6Any, "any/ipv6": ModeIP6Any} {
		got, err := Parse("x", []string{"mode", in, "remote", "2001:db8::2", "local", "2001:db8::1"})
		if err != nil || got.Mode != want {
			t.Errorf("mode %s: got %q, %v; want %q", in, got.Mode, err, want)
		}
	}
}

// TestParseIPv6 reads the words of `ip -6 tunnel` and their defaults:
// hoplimit 64 and encaplimit 4, as `ip -6 tunnel add` sets them.
func TestParseIPv6(t *testing.T) {
	l6, r6 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	def := Tunnel{Name: "x", Mode: ModeIP6GRE, Local: l6, Remote: r6, DF: DFSet, TTL: 64}
	with := func(f func(*Tunnel)) Tunnel {
		c := def
		f(&c)
		return c
	}
	for _, tc := range []struct {
		words string // after the mode and addresses
		want  Tunnel
	}{
		{"", def},
		{"hoplimit 255", with(func(c *Tunnel) { c.TTL = 255 })},
		{"hoplimit inherit", with(func(c *Tunnel) { c.TTL = 0 })},
		{"ttl 9", with(func(c *Tunnel) { c.TTL = 9 })},
		{"tclass 0xb8", with(func(c *Tunnel) { c.TOS = 0xb8 })},
		{"tclass inherit", with(func(c *Tunnel) { c.TOSInherit = true })},
		{"flowlabel 0x12345", with(func(c *Tunnel) { c.FlowLabel = 0x12345 })},
		{"flowlabel fffff", with(func(c *Tunnel) { c.FlowLabel = 0xfffff })},
		{"flowlabel inherit", with(func(c *Tunnel) { c.FlowLabelInherit = true })},
		{"flowlabel inherit flowlabel 1", with(func(c *Tunnel) { c.FlowLabel = 1 })},
		{"encaplimit 4", def},
		{"encaplimit 0", with(func(c *Tunnel) { c.EncapLimit = "0" })},
		{"encaplimit 255", with(func(c *Tunnel) { c.EncapLimit = "255" })},
		{"encaplimit none", with(func(c *Tunnel) { c.EncapLimit = "none" })},
		{"encaplimit none encaplimit 4", def},
		{"remote fe80::2 local fe80::1 dev wan", with(func(c *Tunnel) {
			c.Remote, c.Local, c.Dev = netip.MustParseAddr("fe80::2"), netip.MustParseAddr("fe80::1"), "wan"
		})},
		{"remote fe80::2%wan local fe80::1", with(func(c *Tunnel) {
			c.Remote, c.Local, c.Dev = netip.MustParseAddr("fe80::2"), netip.MustParseAddr("fe80::1"), "wan"
		})},
		{"dev wan2", with(func(c *Tunnel) { c.Dev = "wan2" })}, // global endpoints leave by wan2
		{"key 7 csum seq keepalive", with(func(c *Tunnel) {
			c.IKey, c.HasIKey, c.OKey, c.HasOKey = 7, true, 7, true
			c.ICsum, c.OCsum, c.ISeq, c.OSeq = true, true, true, true
			c.KeepalivePeriod, c.KeepaliveRetries = 10*time.Second, 3
		})},
	} {
		got, err := Parse("x", append(strings.Fields("mode ip6gre remote 2001:db8::2 local 2001:db8::1"), strings.Fields(tc.words)...))
		if err != nil {
			t.Errorf("%q: %v", tc.words, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, addrs); diff != "" {
			t.Errorf("%q: (-want +got)\n%s", tc.words, diff)
		}
	}
	c, err := Parse("x", strings.Fields("mode ip6gre remote 2001:db8::2 local 2001:db8::1"))
	if err != nil {
		t.Fatal(err)
	}
	if e := c.Encap(); !e.HasEncapLimit || e.EncapLimit != 4 || e.TTL != 64 || e.Mode != encap.ModeGRE || e.Remote != r6 {
		t.Errorf("default ip6gre encap %+v, want encaplimit 4 and hop limit 64 as Linux", e)
	}
	if got, want := c.String(), "x: gre/ipv6 remote 2001:db8::2 local 2001:db8::1 hoplimit 64 encaplimit 4"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	for words, want := range map[string]int{
		"mode ip6gre":                 52, // 40 + 8 (encapsulation limit) + 4
		"mode ip6gre encaplimit none": 44,
		"mode ip6gre key 1 csum seq":  64,
		"mode ip6ip6":                 48,
		"mode ipip6 encaplimit none":  40,
		"mode any":                    48,
	} {
		c, err := Parse("x", append(strings.Fields(words), "remote", "2001:db8::2", "local", "2001:db8::1"))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Overhead(); got != want {
			t.Errorf("%s: Overhead() = %d, want %d", words, got, want)
		}
	}
	// `tunnel change NAME encaplimit 4` is no change: the default has one spelling.
	same := c
	if err := same.Apply([]string{"encaplimit", "4"}); err != nil || same != c {
		t.Errorf("encaplimit 4 on a default tunnel: %+v, %v", same, err)
	}
	// JSON (the control socket, `-j`) carries every IPv6 word.
	full, err := Parse("x", strings.Fields("mode ip6gre remote 2001:db8::2 local 2001:db8::1 hoplimit 9 tclass inherit flowlabel 0x12345 encaplimit 0 key 3"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	var back Tunnel
	if err := json.Unmarshal(j, &back); err != nil || back != full {
		t.Errorf("JSON round trip of %s: %s gives %+v, %v", full, j, back, err)
	}
	if !strings.Contains(string(j), `"mode":"ip6gre"`) || !strings.Contains(string(j), `"encaplimit":"0"`) || !strings.Contains(string(j), `"flowlabel":74565`) {
		t.Errorf("JSON of an ip6gre tunnel: %s", j)
	}
	for m, want := range map[Mode][]uint8{ModeIP6GRE: {47}, ModeIP6IP6: {41}, ModeIPIP6: {4}, ModeIP6Any: {41, 4}} {
		c := &Tunnel{Mode: m}
		if got := c.Protos(); !slices.Equal(got, want) || c.Proto() != want[0] {
			t.Errorf("%s: Protos() = %v, Proto() = %d, want %v", m, got, c.Proto(), want)
		}
		for _, p := range []uint8{4, 41, 47} {
			if got := c.SendsProto(p); got != slices.Contains(want, p) {
				t.Errorf("%s: SendsProto(%d) = %v", m, p, got)
			}
		}
	}
	// Mode any sends IPv4 and IPv6 under one template (encap.ModeIP6Any),
	// with ip6ip6's defaults.
	anyT, err := Parse("x", strings.Fields("mode any remote 2001:db8::2 local 2001:db8::1"))
	if err != nil {
		t.Fatal(err)
	}
	if e := anyT.Encap(); e.Mode != encap.ModeIP6Any || !e.HasEncapLimit || e.EncapLimit != 4 || e.TTL != 64 || !e.FlowLabelAuto {
		t.Errorf("default mode any encap %+v, want encaplimit 4 and hop limit 64 as Linux", e)
	}
	if j, err := json.Marshal(anyT); err != nil || !strings.Contains(string(j), `"mode":"any"`) {
		t.Errorf("JSON of a mode any tunnel: %s, %v", j, err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, words, want string
	}{
		{"x", "mode gre remote 192.0.2.2", "missing local"},
		{"x", "mode ipip local 192.0.2.1", "missing remote address (a multipoint tunnel needs mode gre or ip6gre, not ipip)"},
		{"x", "mode ip6ip6 local 2001:db8::1", "missing remote address (a multipoint tunnel needs mode gre or ip6gre, not ip6ip6)"},
		{"x", "mode ip6gre local fe80::1 dev eth0", "local fe80::1 is link-local: a multipoint tunnel's neighbours are not on one link"},
		{"x", "mode gre local 192.0.2.1 keepalive", "keepalive needs a remote"},
		{"x", "mode gre local 192.0.2.1 underlay packet", "underlay packet needs a remote"},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 learn", "learn needs a multipoint tunnel"},
		{"x", "mode gre local 192.0.2.1 learn 0", `invalid learn "0"`},
		{"x", "mode gre local 192.0.2.1 learn 65537", `invalid learn "65537"`},
		{"x", "remote 192.0.2.2 local 192.0.2.1", "missing mode"},
		{"x", "mode", `missing value after "mode"`},
		{"x", "mode gre remote", `missing value after "remote"`},
		{"x", "mode gre6 remote 192.0.2.2 local 192.0.2.1", `unknown mode "gre6" (want gre, gretap, ipip, sit, ip6gre, ip6gretap, ip6ip6, ipip6 or any)`},
		{"x", "mode any remote 192.0.2.2 local 192.0.2.1", "remote 192.0.2.2 is an IPv4 address: mode any needs IPv6 (use mode gre)"},
		{"x", "mode any remote 2001:db8::2 local 2001:db8::1 key 1", "keys need mode gre or ip6gre"},
		{"x", "mode any remote 2001:db8::2 local 2001:db8::1 nopmtudisc ttl inherit", "nopmtudisc needs an IPv4 underlay"},
		{"x", "mode any local 2001:db8::1", "missing remote address (a multipoint tunnel needs mode gre or ip6gre, not any)"},
		{"x", "mode any remote 2001:db8::2 local 2001:db8::1 encap fou encap-dport 5555", "encap fou needs mode ip6ip6 or ipip6, not any: a fou port carries one inner protocol"},
		{"x", "mode gre remote 192.0.2.256 local 192.0.2.1", `invalid address "192.0.2.256" for remote`},
		{"x", "mode gre remote 2001:db8::1 local 192.0.2.1", "remote 2001:db8::1 is an IPv6 address: mode gre needs IPv4 (use mode ip6gre)"},
		{"x", "mode gre remote 192.0.2.2 local any", `invalid address "any" for local`},
		// The IPv6 modes: family, link-local, IPv6-only and IPv4-only words.
		{"x", "mode ip6gre remote 192.0.2.2 local 2001:db8::1", "remote 192.0.2.2 is an IPv4 address: mode ip6gre needs IPv6 (use mode gre)"},
		{"x", "mode ipip6 remote 2001:db8::2 local 192.0.2.1", "local 192.0.2.1 is an IPv4 address: mode ipip6 needs IPv6 (use mode ipip)"},
		{"x", "mode ipip remote 2001:db8::2 local 2001:db8::1", "mode ipip needs IPv4 (use mode ipip6)"},
		{"x", "mode ip6ip6 remote ::ffff:192.0.2.2 local 2001:db8::1", `invalid address "::ffff:192.0.2.2" for remote`},
		{"x", "mode ip6gre remote fe80::2 local 2001:db8::1", "remote fe80::2 is link-local: it needs the device of its link (dev NAME)"},
		{"x", "mode ip6gre remote fe80::2 local fe80::1", "remote fe80::2 is link-local: it needs the device of its link (dev NAME)"},
		{"x", "mode ip6gre remote 2001:db8::2 local fe80::1%eth0", "remote 2001:db8::2 and local fe80::1: a link-local endpoint needs a link-local peer"},
		{"x", "mode ip6gre remote fe80::2%eth0 local 2001:db8::1", "remote fe80::2 and local 2001:db8::1: a link-local endpoint needs a link-local peer"},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 dev eth0/1", "invalid dev"},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 dev x", "dev x is the tunnel itself: its packets would loop"},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 fwmark 4294967296", `invalid fwmark "4294967296"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 fwmark -1", `invalid fwmark "-1"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 fwmark", `missing value after "fwmark"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 underlay packet fwmark 1", "underlay packet takes no fwmark"},
		{"x", "mode ip6gre remote 2001:db8::2 local 2001:db8::1 dev eth0 encap fou", "encap fou over IPv6 takes no dev"},
		{"x", "mode ip6ip6 remote fe80::2 local fe80::1 dev eth0 encap fou encap-dport 5555", "encap fou over IPv6 takes no dev"},
		{"x", "mode ip6gre dev eth0 remote fe80::2%eth1 local fe80::1", "names device eth1, dev says eth0"},
		{"x", "mode ip6gre remote fe80::2 local fe80::1 dev a/b", "invalid dev"},
		{"x", "mode ip6gre remote 2001:db8::1 local 2001:db8::1", "remote 2001:db8::1 equals local"},
		{"x", "mode ip6gre remote ff02::1 local 2001:db8::1", "not a unicast address"},
		{"x", "mode ip6gre remote 2001:db8::2 local 2001:db8::1 encaplimit 256", `invalid encaplimit "256"`},
		{"x", "mode ip6gre remote 2001:db8::2 local 2001:db8::1 encaplimit -1", `invalid encaplimit "-1"`},
		{"x", "mode ip6gre remote 2001:db8::2 local 2001:db8::1 flowlabel 100000", `invalid flowlabel "100000"`},
		{"x", "mode ip6gre remote 2001:db8::2 local 2001:db8::1 flowlabel", `missing value after "flowlabel"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 encaplimit 4", "encaplimit needs an IPv6 mode"},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 flowlabel inherit", "flowlabel needs an IPv6 mode"},
		{"x", "mode ip6gre remote 2001:db8::2 local 2001:db8::1 nopmtudisc hoplimit 0", "nopmtudisc needs an IPv4 underlay"},
		{"x", "mode ip6ip6 remote 2001:db8::2 local 2001:db8::1 ignore-df", "ignore-df needs an IPv4 underlay"},
		{"x", "mode ip6gre remote 2001:db8::2 local 2001:db8::1 underlay packet", "underlay packet needs an IPv4 underlay"},
		{"x", "mode ip6ip6 remote 2001:db8::2 local 2001:db8::1 key 1", "keys need mode gre or ip6gre"},
		{"x", "mode ipip6 remote 2001:db8::2 local 2001:db8::1 keepalive", "keepalive needs mode gre or ip6gre"},
		{"x", "mode ip6gretap remote 2001:db8::2 local 2001:db8::1 flowlabel inherit", "flowlabel inherit needs mode ip6gre (ip6gretap carries Ethernet frames, not IP)"},
		{"x", "mode ip6gretap remote 2001:db8::2 local 2001:db8::1 tclass inherit", "tos inherit needs mode gre or ipip (ip6gretap carries"},
		{"x", "mode ip6gretap remote 192.0.2.2 local 192.0.2.1", "mode ip6gretap needs IPv6 (use mode gretap)"},
		{"x", "mode gretap remote 2001:db8::2 local 2001:db8::1", "mode gretap needs IPv4 (use mode ip6gretap)"},
		{"x", "mode gretap local 192.0.2.1 key 7", "a multipoint tunnel needs mode gre or ip6gre, not gretap"},
		{"x", "mode gretap remote 192.0.2.2 local 192.0.2.1 tos inherit", "tos inherit needs mode gre or ipip (gretap carries Ethernet frames, not IP)"},
		{"x", "mode gretap remote 192.0.2.2 local 192.0.2.1 tos 0x11", "tos inherit needs mode gre or ipip"},
		{"x", "mode gretap remote 192.0.2.2 local 192.0.2.1 clamp-mss 1200", "clamp-mss needs mode gre or ipip"},
		{"x", "mode gre remote 192.0.2.1 local 192.0.2.1", "remote 192.0.2.1 equals local"},
		{"x", "mode gre remote 0.0.0.0 local 192.0.2.1", "remote 0.0.0.0 is not a unicast address"},
		{"x", "mode gre remote 255.255.255.255 local 192.0.2.1", "not a unicast address"},
		{"x", "mode gre remote 239.1.1.1 local 192.0.2.1", "not a unicast address"},
		{"x", "mode gre remote 192.0.2.2 local 0.0.0.0", "local 0.0.0.0 is not a unicast address"},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 bogus", `unknown word "bogus"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 encap gue", `unknown encap "gue"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 encap-dport 5000", "need encap fou"},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 encap fou encap-dport 0", `invalid encap-dport "0"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 encap fou encap-dport 65536", `invalid encap-dport "65536"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 encap fou encap-sport any", `invalid encap-sport "any"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 encap fou fou-port", `missing value after "fou-port"`},
		{"x", "mode ipip remote 192.0.2.2 local 192.0.2.1 encap fou", "mode ipip needs encap-dport"},
		{"x", "mode ipip6 remote 2001:db8::2 local 2001:db8::1 encap fou", "mode ipip6 needs encap-dport"},
		{"x", "mode ip6ip6 remote 2001:db8::2 local 2001:db8::1 encap fou", "mode ip6ip6 needs encap-dport"},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 encap fou encap-sport 5000", "encap-sport 5000 must be the port gretun receives on, 4754"},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 encap fou underlay packet", "underlay packet cannot send encap fou"},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 ttl 256", `invalid ttl "256"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 ttl -1", `invalid ttl "-1"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 ttl", `missing value after "ttl"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 tos 256", `invalid tos "256"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 tos 0x100", `invalid tos "0x100"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 ttl 64 nopmtudisc", "ttl != 0 and nopmtudisc are incompatible"},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 nopmtudisc ttl 1", "ttl != 0 and nopmtudisc are incompatible"},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 key -1", `invalid key "-1"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 key 4294967296", `invalid key "4294967296"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 ikey 1.2.3", `invalid key "1.2.3"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 okey ::1", `invalid key "::1"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 mtu 67", "invalid mtu 67 (want 68-"},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 mtu 65512", "invalid mtu 65512 (want 68-65511)"},
		{"x", "mode ipip remote 192.0.2.2 local 192.0.2.1 mtu 65516", "invalid mtu 65516 (want 68-65515)"},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 mtu -1", `invalid mtu "-1"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 mtu big", `invalid mtu "big"`},
		{"x", "mode ipip remote 192.0.2.2 local 192.0.2.1 key 1", "keys need mode gre"},
		{"x", "mode ipip remote 192.0.2.2 local 192.0.2.1 okey 1", "keys need mode gre"},
		{"x", "mode ipip remote 192.0.2.2 local 192.0.2.1 icsum", "csum needs mode gre"},
		{"x", "mode ipip remote 192.0.2.2 local 192.0.2.1 oseq", "seq needs mode gre"},
		{"x", "mode ipip remote 192.0.2.2 local 192.0.2.1 keepalive", "keepalive needs mode gre"},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 keepalive 0.005", "too short"},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 keepalive 1 0", `invalid keepalive retries "0"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 keepalive 1 256", `invalid keepalive retries "256"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 keepalive 0", `invalid keepalive period "0"`},
		// One set of limits for every way in (keepalive.MinPeriod, MaxPeriod).
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 keepalive 9ms", "too short"},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 keepalive 32768", `invalid keepalive period "32768"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 keepalive 10h", "too long (maximum 9h6m7s)"},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 clamp-mss 87", `invalid clamp-mss "87"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 underlay xdp", `unknown underlay "xdp"`},
		{"x", "mode gre remote 192.0.2.2 local 192.0.2.1 underlay", `missing value after "underlay"`},
		{"", "mode gre remote 192.0.2.2 local 192.0.2.1", "missing tunnel name"},
		{"abcdefghijklmnop", "mode gre remote 192.0.2.2 local 192.0.2.1", "longer than 15 bytes"},
		{"a/b", "mode gre remote 192.0.2.2 local 192.0.2.1", `invalid tunnel name "a/b"`},
		{"a:b", "mode gre remote 192.0.2.2 local 192.0.2.1", `invalid tunnel name "a:b"`},
		{"a b", "mode gre remote 192.0.2.2 local 192.0.2.1", `invalid tunnel name "a b"`},
		{"..", "mode gre remote 192.0.2.2 local 192.0.2.1", `invalid tunnel name ".."`},
	} {
		checkParseError(t, tc.name, tc.words, tc.want)
	}
}

// checkParseError asserts that Parse refuses the words with one line
// containing want.
func checkParseError(t *testing.T, name, words, want string) {
	t.Helper()
	got, err := Parse(name, strings.Fields(words))
	if err == nil {
		t.Errorf("%s %q: no error, parsed %v", name, words, got)
		return
	}
	if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("%s %q: error %q, want one line containing %q", name, words, err, want)
	}
}

// TestApply is `tunnel change`: the words given change, the others stay.
func TestApply(t *testing.T) {
	c, err := Parse("netb", append(append([]string{}, base...), strings.Fields("ttl 64 key 7 csum seq keepalive 2 5 mtu 1400")...))
	if err != nil {
		t.Fatal(err)
	}
	want := c
	if err := c.Apply([]string{"ttl", "32", "okey", "9", "nocsum"}); err != nil {
		t.Fatal(err)
	}
	want.TTL, want.OKey, want.ICsum, want.OCsum = 32, 9, false, false
	if diff := cmp.Diff(want, c, addrs); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	// A failing word reports the error; Validate catches what Apply cannot.
	if err := c.Apply([]string{"ttl", "x"}); err == nil {
		t.Error("Apply accepted ttl x")
	}
	c2 := c
	if err := c2.Apply([]string{"mode", "ipip"}); err != nil {
		t.Fatal(err)
	}
	if err := c2.Validate(); err == nil || !strings.Contains(err.Error(), "need mode gre") {
		t.Errorf("Validate of gre options on ipip: %v", err)
	}
}

// TestStringRoundTrip parses what String prints (with "mode" in front of
// the mode, as `ip tunnel show` prints it) back to the same tunnel.
func TestStringRoundTrip(t *testing.T) {
	for _, words := range []string{
		"",
		"ttl 255 tos 0x10 key 42 csum seq pmtudisc mtu 1400",
		"tos inherit ikey 1 okey 2 icsum oseq nopmtudisc",
		"tos 0x11 ignore-df",
		"okey 3 iseq ocsum ignore-df keepalive 0.25 7 clamp-mss",
		"key 1.2.3.4 keepalive clamp-mss 1200",
		"keepalive 1.5",
		"keepalive 1.005", // 1.004999999 s before rounding
		"keepalive 0.29 2",
		"underlay packet",
		"key 5 underlay packet clamp-mss",
		"keepalive noreflect",
		"encap fou",
		"key 9 encap fou encap-dport 5000 encap-sport 6000 fou-port 6000 noencap-csum keepalive",
		"encap fou encap-csum encap-sport auto",
	} {
		c, err := Parse("netb", append(append([]string{}, base...), strings.Fields(words)...))
		if err != nil {
			t.Fatalf("%q: %v", words, err)
		}
		roundTrip(t, c)
	}
	for _, words := range []string{
		"mode ip6gre remote 2001:db8::2 local 2001:db8::1",
		"mode ip6gre remote 2001:db8::2 local 2001:db8::1 hoplimit inherit tclass inherit flowlabel inherit encaplimit none key 3 csum seq keepalive 2 4",
		"mode ip6ip6 remote 2001:db8::2 local 2001:db8::1 hoplimit 255 tclass 0x20 flowlabel 0x00abc encaplimit 0 mtu 1400",
		"mode ipip6 remote 2001:db8::2 local 2001:db8::1 encaplimit 255 clamp-mss",
		"mode any remote 2001:db8::2 local 2001:db8::1 hoplimit inherit tclass inherit flowlabel inherit encaplimit none clamp-mss 1200",
		"mode any remote fe80::2 local fe80::1 dev wan",
		"mode ip6gre remote fe80::2 local fe80::1 dev wan key 1",
		"mode gretap remote 192.0.2.2 local 192.0.2.1",
		"mode ip6gretap remote 2001:db8::2 local 2001:db8::1 key 7 csum seq keepalive 2 3 tclass 0x10",
		"mode ip6gre remote 2001:db8::2 local 2001:db8::1 key 5 encap fou encap-dport 4754 keepalive 2 3",
		"mode gretap remote 192.0.2.2 local 192.0.2.1 key 5 encap fou encap-dport 4754 keepalive 2 3",
		"mode ip6gretap remote 2001:db8::2 local 2001:db8::1 encaplimit none encap fou encap-dport 6000 fou-port 6001",
		"mode gretap remote 192.0.2.2 local 192.0.2.1 key 7 csum seq keepalive 2 3 nopmtudisc tos 0x10 mtu 1500 underlay packet noreflect",
	} {
		c, err := Parse("v6", strings.Fields(words))
		if err != nil {
			t.Fatalf("%q: %v", words, err)
		}
		roundTrip(t, c)
	}
	c, err := Parse("ip1", strings.Fields("mode ipip remote 192.0.2.2 local 192.0.2.1 ttl 3 tos inherit pmtudisc mtu 1000"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.String(), "ip1: ipip/ip remote 192.0.2.2 local 192.0.2.1 ttl 3 tos inherit mtu 1000"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	roundTrip(t, c)
	// The default underlay is not printed; the opt-in one is.
	if got := c.String(); strings.Contains(got, "underlay") {
		t.Errorf("String() of a raw-underlay tunnel = %q, mentions underlay", got)
	}
	c.Underlay = UnderlayPacket
	if got, want := c.String(), "ip1: ipip/ip remote 192.0.2.2 local 192.0.2.1 ttl 3 tos inherit mtu 1000 underlay packet"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	c.Underlay = "bogus"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `unknown underlay "bogus"`) {
		t.Errorf("Validate of underlay bogus: %v", err)
	}
}

func roundTrip(t *testing.T, c Tunnel) {
	t.Helper()
	f := strings.Fields(c.String())
	if len(f) < 2 || f[0] != c.Name+":" {
		t.Fatalf("String() = %q", c.String())
	}
	back, err := Parse(c.Name, append([]string{"mode", f[1]}, f[2:]...))
	if err != nil {
		t.Fatalf("reparsing %q: %v", c.String(), err)
	}
	if diff := cmp.Diff(c, back, addrs); diff != "" {
		t.Errorf("%q does not parse back: (-want +got)\n%s", c.String(), diff)
	}
}

func TestOverheadAndSides(t *testing.T) {
	for words, want := range map[string]int{
		"mode ipip":                  20,
		"mode gre":                   24,
		"mode gre key 1":             28,
		"mode gre ikey 1":            24, // only what is sent counts
		"mode gre okey 1 ocsum":      32,
		"mode gre key 1 csum oseq":   36,
		"mode gre icsum iseq ikey 1": 24,
		"mode gretap":                38, // the frame's Ethernet header too: MTU 1462 on 1500
		"mode gretap key 1 csum seq": 50,
		"mode ip6gretap remote 2001:db8::2 local 2001:db8::1": 40 + 8 + 4 + 14, // IPv6, the encapsulation limit, GRE, Ethernet: MTU 1434 on 1500
	} {
		if !strings.Contains(words, "remote") {
			words += " remote 192.0.2.2 local 192.0.2.1"
		}
		c, err := Parse("x", strings.Fields(words))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Overhead(); got != want {
			t.Errorf("%s: Overhead() = %d, want %d", words, got, want)
		}
	}

	c, err := Parse("x", append(append([]string{}, base...), strings.Fields("ttl 9 tos 0x20 ikey 1 okey 2 icsum oseq pmtudisc")...))
	if err != nil {
		t.Fatal(err)
	}
	wantEnc := encap.Config{Mode: encap.ModeGRE, Local: a1, Remote: a2, TTL: 9, TOS: 0x20, Key: 2, HasKey: true, Sequence: true, DF: encap.DFSet}
	if diff := cmp.Diff(wantEnc, c.Encap(), addrs); diff != "" {
		t.Errorf("Encap: (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff(decap.Policy{Key: 1, HasKey: true, RequireChecksum: true}, c.Policy(), addrs); diff != "" {
		t.Errorf("Policy: (-want +got)\n%s", diff)
	}
	if c.Proto() != 47 {
		t.Errorf("GRE Proto() = %d", c.Proto())
	}
	for df, want := range map[DF]encap.DFPolicy{"": encap.DFSet, DFSet: encap.DFSet, DFInherit: encap.DFInherit, DFIgnore: encap.DFClear} {
		c := Tunnel{Mode: ModeGRE, DF: df}
		if got := c.Encap().DF; got != want {
			t.Errorf("DF %q: encap policy %d, want %d", df, got, want)
		}
	}
	tap := Tunnel{Mode: ModeGRETap, Local: a1, Remote: a2}
	if e := tap.Encap(); e.EtherType != 0x6558 || e.Mode != encap.ModeGRE || tap.Proto() != 47 || !tap.Ethernet() || c.Ethernet() {
		t.Errorf("gretap: encap %+v proto %d", e, tap.Proto())
	}
	ip := Tunnel{Mode: ModeIPIP, TOSInherit: true}
	if e := ip.Encap(); e.Mode != encap.ModeIPIP || !e.TOSInherit || ip.Proto() != 4 {
		t.Errorf("IPIP: encap %+v proto %d", e, ip.Proto())
	}
	// An odd TOS arriving as JSON (no words to parse) inherits too.
	if odd := (Tunnel{Mode: ModeGRE, TOS: 0x11}); !odd.Encap().TOSInherit || !strings.Contains(odd.String(), " tos inherit") {
		t.Errorf("TOS 0x11: encap %+v, shown as %q; want inherit", odd.Encap(), odd.String())
	}
}

func TestParseKey(t *testing.T) {
	for in, want := range map[string]uint32{"0": 0, "42": 42, "0x2a": 42, "4294967295": 1<<32 - 1, "0.0.1.0": 256, "255.255.255.255": 1<<32 - 1} {
		if got, err := ParseKey(in); err != nil || got != want {
			t.Errorf("ParseKey(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "x", "1.2.3", "1.2.3.4.5", "256.0.0.0", "4294967296"} {
		if _, err := ParseKey(in); err == nil {
			t.Errorf("ParseKey(%q) accepted", in)
		}
	}
}

// FuzzParse: any words either fail with one line or give a valid tunnel
// that String prints in a form that parses back to it.
func FuzzParse(f *testing.F) {
	f.Add("mode gre remote 192.0.2.2 local 192.0.2.1 ttl 255 key 42 csum seq keepalive 0.3 4 clamp-mss")
	f.Add("mode ipip remote 192.0.2.2 local 192.0.2.1 tos inherit mtu 1400 nopmtudisc")
	f.Add("mode gre remote 192.0.2.2 local 192.0.2.1 ikey 1.2.3.4 okey 0x10 keepalive 250ms")
	f.Add("mode gre remote 192.0.2.2 local 192.0.2.1 tos 1f keepalive")
	f.Add("mode ip6gre remote 2001:db8::2 local 2001:db8::1 hoplimit 3 flowlabel inherit encaplimit none key 1")
	f.Add("mode ipip6 remote 2001:db8::2 local 2001:db8::1 tclass 0x10 encaplimit 0")
	f.Add("mode gre remote 192.0.2.2 local 192.0.2.1 dev wan2 encap fou")
	f.Add("mode ip6gre remote fe80::2%wan local fe80::1 key 7")
	f.Add("mode gre local 192.0.2.1 key 7 dev wan2")
	f.Add("mode ipip remote 192.0.2.2 local 192.0.2.1 fwmark 0x2a")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse("f", strings.Fields(s))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid tunnel: %v", err)
		}
		roundTrip(t, c)
	})
}

// TestDefaultsAsLinux: with no DF or TOS words a tunnel behaves as `ip
// tunnel add` makes it, and its JSON says so.
func TestDefaultsAsLinux(t *testing.T) {
	c, err := Parse("x", base)
	if err != nil {
		t.Fatal(err)
	}
	if e := c.Encap(); e.DF != encap.DFSet || e.TOSInherit || e.TOS != 0 || e.TTL != 0 {
		t.Errorf("default encap %+v, want DF always set (pmtudisc), TOS 0, TTL inherited", e)
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), `"df":"pmtudisc"`) {
		t.Errorf("JSON of a default tunnel: %s, want df pmtudisc", j)
	}
	var back Tunnel
	if err := json.Unmarshal([]byte(`{"name":"x","mode":"gre","df":"nopmtudisc","tos":17}`), &back); err != nil {
		t.Fatal(err)
	}
	if e := back.Encap(); e.DF != encap.DFInherit || !e.TOSInherit {
		t.Errorf("JSON nopmtudisc and tos 17: encap %+v, want DF copied and TOS inherited", e)
	}
}

// TestMultipoint: a GRE tunnel without remote is multipoint, shows as
// `remote any` (as ip tunnel) and parses back; learn is its alone.
func TestMultipoint(t *testing.T) {
	c, err := Parse("mg0", strings.Fields("mode gre local 192.0.2.1 key 7 learn"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Multipoint() || c.Learn != DefaultLearn {
		t.Errorf("parsed %+v", c)
	}
	if got, want := c.String(), "mg0: gre/ip remote any local 192.0.2.1 ttl inherit key 7 learn 256"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	roundTrip(t, c)
	if err := c.Apply([]string{"nolearn", "remote", "192.0.2.2"}); err != nil || c.Learn != 0 || c.Multipoint() {
		t.Errorf("nolearn remote 192.0.2.2: %+v %v", c, err)
	}
}

// TestFOUOverIPv6: encap fou on the ip6 modes, as Linux's ip6gre and
// ip6tnl take it: ip6gre to GRE's port 4754 by default, the others with
// encap-dport; the outer headers are IPv6 (with the default encapsulation
// limit, as the kernel sends it), UDP and the tunnel protocol.
func TestFOUOverIPv6(t *testing.T) {
	for _, c := range []struct {
		words    string
		port     uint16
		overhead int
	}{
		{"mode ip6gre remote 2001:db8::2 local 2001:db8::1 encap fou", 4754, 40 + 8 + 8 + 4},
		{"mode ip6gre remote 2001:db8::2 local 2001:db8::1 encaplimit none key 1 encap fou", 4754, 40 + 8 + 8},
		{"mode ipip6 remote 2001:db8::2 local 2001:db8::1 encap fou encap-dport 5555", 5555, 40 + 8 + 8},
		{"mode ip6ip6 remote 2001:db8::2 local 2001:db8::1 encaplimit none encap fou encap-dport 5556", 5556, 40 + 8},
	} {
		tn, err := Parse("t0", strings.Fields(c.words))
		if err == nil {
			err = tn.Validate()
		}
		if err != nil {
			t.Errorf("%s: %v", c.words, err)
			continue
		}
		if raw := !strings.Contains(c.words, "encaplimit none"); tn.NeedsNetRaw() != raw {
			t.Errorf("%s: NeedsNetRaw %v", c.words, !raw)
		}
		if !tn.UDP() || tn.DstPort() != c.port || tn.LocalPort() != c.port || tn.Overhead() != c.overhead {
			t.Errorf("%s: udp %v, ports %d/%d, overhead %d", c.words, tn.UDP(), tn.DstPort(), tn.LocalPort(), tn.Overhead())
		}
	}
}
