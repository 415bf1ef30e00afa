package config

import (
	"strings"
	"testing"
)

// TestStringGolden pins the `tunnel show` line (also a config file line
// after the name) byte for byte, mode, DF policy and underlay included.
func TestStringGolden(t *testing.T) {
	for _, tc := range []struct{ words, want string }{
		{"mode gre remote 192.0.2.2 local 192.0.2.1 ttl 255",
			"t: gre/ip remote 192.0.2.2 local 192.0.2.1 ttl 255"},
		{"mode ipip remote 192.0.2.2 local 192.0.2.1 pmtudisc underlay raw",
			"t: ipip/ip remote 192.0.2.2 local 192.0.2.1 ttl inherit"},
		{"mode gre/ip remote 192.0.2.2 local 192.0.2.1 nopmtudisc key 7",
			"t: gre/ip remote 192.0.2.2 local 192.0.2.1 ttl inherit key 7 nopmtudisc"},
		{"mode gretap remote 192.0.2.2 local 192.0.2.1 key 7 keepalive",
			"t: gretap/ip remote 192.0.2.2 local 192.0.2.1 ttl inherit key 7 keepalive 10 3"},
		{"mode ip/ip remote 192.0.2.2 local 192.0.2.1 ignore-df mtu 1400",
			"t: ipip/ip remote 192.0.2.2 local 192.0.2.1 ttl inherit ignore-df mtu 1400"},
		{"mode gre remote 192.0.2.2 local 192.0.2.1 ttl 64 tos 0x10 ikey 1 okey 2 csum iseq ignore-df keepalive 0.5 4 clamp-mss 1300 noreflect underlay packet",
			"t: gre/ip remote 192.0.2.2 local 192.0.2.1 ttl 64 tos 0x10 ikey 1 okey 2 iseq csum ignore-df keepalive 0.5 4 clamp-mss 1300 noreflect underlay packet"},
		{"mode gre remote 192.0.2.2 local 192.0.2.1 encap fou",
			"t: gre/ip remote 192.0.2.2 local 192.0.2.1 ttl inherit encap fou encap-dport 4754 encap-sport auto"},
		{"mode ipip remote 192.0.2.2 local 192.0.2.1 encap fou encap-dport 5555 noencap-csum fou-port 5556 encap-sport 5556",
			"t: ipip/ip remote 192.0.2.2 local 192.0.2.1 ttl inherit encap fou encap-dport 5555 encap-sport 5556 noencap-csum fou-port 5556"},
		{"mode any remote 2001:db8::2 local 2001:db8::1",
			"t: any/ipv6 remote 2001:db8::2 local 2001:db8::1 hoplimit 64 encaplimit 4"},
		{"mode any/ipv6 remote 2001:db8::2 local 2001:db8::1 hoplimit 255 tclass 0x20 flowlabel 0xabc encaplimit none mtu 1400",
			"t: any/ipv6 remote 2001:db8::2 local 2001:db8::1 hoplimit 255 tclass 0x20 flowlabel 0x00abc encaplimit none mtu 1400"},
		{"mode gre remote 192.0.2.2 local 192.0.2.1 encap fou encap-dport 5000 encap none",
			"t: gre/ip remote 192.0.2.2 local 192.0.2.1 ttl inherit"},
	} {
		c, err := Parse("t", strings.Fields(tc.words))
		if err != nil {
			t.Fatalf("%s: %v", tc.words, err)
		}
		if got := c.String(); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.words, got, tc.want)
		}
	}
}
