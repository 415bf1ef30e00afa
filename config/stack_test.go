package config

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseStack(t *testing.T) {
	words := append(append([]string{}, base...), strings.Fields(
		"netstack 198.51.100.9/24 2001:db8:5::9/64 dns 198.51.100.53 socks5 alice:s3cr:t@192.0.2.1:1080 "+
			"forward tcp 8080 web.example.test:80 forward udp 192.0.2.1:5353 198.51.100.53:53 reverse tcp 2222 127.0.0.1:22 ttl 64")...)
	c, err := Parse("ns", words)
	if err != nil {
		t.Fatal(err)
	}
	want := &Stack{
		Addrs:      []netip.Prefix{netip.MustParsePrefix("198.51.100.9/24"), netip.MustParsePrefix("2001:db8:5::9/64")},
		DNS:        netip.MustParseAddr("198.51.100.53"),
		SOCKS5:     netip.MustParseAddrPort("192.0.2.1:1080"),
		SOCKS5User: "alice", SOCKS5Pass: "s3cr:t",
		Forwards: []Forward{
			{Proto: "tcp", Listen: "127.0.0.1:8080", Target: "web.example.test:80"},
			{Proto: "udp", Listen: "192.0.2.1:5353", Target: "198.51.100.53:53"},
			{Reverse: true, Proto: "tcp", Listen: ":2222", Target: "127.0.0.1:22"},
		},
	}
	cmpAddrs := cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
	cmpPrefix := cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })
	cmpAP := cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })
	if diff := cmp.Diff(want, c.Stack, cmpAddrs, cmpPrefix, cmpAP); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if c.TTL != 64 {
		t.Errorf("ttl after the stack words: %d", c.TTL)
	}
	line := c.String()
	if strings.Contains(line, "s3cr") || !strings.Contains(line, " netstack 198.51.100.9/24 2001:db8:5::9/64 dns 198.51.100.53 socks5 alice:*@192.0.2.1:1080 forward tcp 127.0.0.1:8080 web.example.test:80") ||
		!strings.Contains(line, "reverse tcp 2222 127.0.0.1:22") {
		t.Errorf("String() = %q", line)
	}
	js, _ := json.Marshal(c)
	if strings.Contains(string(js), "s3cr") {
		t.Errorf("the password is in the JSON: %s", js)
	}
}

// TestApplyStackCopies: `tunnel change` applies words to a copy of the
// running configuration; the running tunnel's stack stays as it was.
func TestApplyStackCopies(t *testing.T) {
	c, err := Parse("ns", append(append([]string{}, base...), "netstack", "198.51.100.9/24", "forward", "tcp", "80", "198.51.100.1:80"))
	if err != nil {
		t.Fatal(err)
	}
	d := c
	if err := d.Apply(strings.Fields("forward udp 53 198.51.100.1:53 socks5 127.0.0.1:1080")); err != nil {
		t.Fatal(err)
	}
	if len(c.Stack.Forwards) != 1 || c.Stack.SOCKS5.IsValid() {
		t.Errorf("the original changed: %+v", c.Stack)
	}
	if len(d.Stack.Forwards) != 2 || !d.Stack.SOCKS5.IsValid() {
		t.Errorf("the copy: %+v", d.Stack)
	}
	if c.SameDevice(&d) || c.Equal(&d) || !c.Equal(&c) {
		t.Error("SameDevice or Equal wrong about a changed stack")
	}
	e, _ := Parse("ns", append(append([]string{}, base...), "netstack", "198.51.100.9/24", "forward", "tcp", "80", "198.51.100.1:80"))
	if !c.Equal(&e) || !c.SameDevice(&e) {
		t.Error("two parses of the same words differ")
	}
}

func TestParseStackErrors(t *testing.T) {
	for _, tc := range []struct{ words, want string }{
		{"netstack", `missing value after "netstack"`},
		{"netstack 198.51.100.9", `invalid netstack address "198.51.100.9"`},
		{"netstack 198.51.100.9/24 198.51.100.10/24", "one IPv4 and one IPv6"},
		{"netstack 0.0.0.0/0", "not a unicast address"},
		{"socks5 127.0.0.1:1080", "socks5 needs netstack"},
		{"dns 198.51.100.53", "dns needs netstack"},
		{"forward tcp 80 198.51.100.1:80", "forward and reverse needs netstack"},
		{"netstack 198.51.100.9/24 socks5 192.0.2.1:1080", "listens only on loopback"},
		{"netstack 198.51.100.9/24 socks5 :1080", `invalid socks5 address ":1080"`},
		{"netstack 198.51.100.9/24 socks5 bob@127.0.0.1:1080", "invalid socks5 credentials"},
		{"netstack 198.51.100.9/24 socks5 127.0.0.1:0", "invalid socks5 address"},
		{"netstack 198.51.100.9/24 dns x", `invalid dns address "x"`},
		{"netstack 198.51.100.9/24 forward sctp 80 198.51.100.1:80", `invalid forward protocol "sctp"`},
		{"netstack 198.51.100.9/24 forward tcp 80", `missing value after "forward tcp 80"`},
		{"netstack 198.51.100.9/24 forward tcp x:80 198.51.100.1:80", "invalid forward listening address"},
		{"netstack 198.51.100.9/24 forward tcp 80 198.51.100.1", `invalid forward target "198.51.100.1"`},
		{"netstack 198.51.100.9/24 forward tcp 80 198.51.100.1:0", "invalid forward target port"},
		{"netstack 198.51.100.9/24 reverse tcp 0 127.0.0.1:22", `invalid reverse port "0"`},
		{"netstack 198.51.100.9/24 reverse udp 53 127.0.0.1:53 reverse udp 53 127.0.0.1:54", "forwarded twice"},
	} {
		_, err := Parse("ns", append(append([]string{}, base...), strings.Fields(tc.words)...))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error with %q", tc.words, err, tc.want)
		}
	}
	// A stack takes IP packets, not the Ethernet frames of gretap.
	if _, err := Parse("ns", strings.Fields("mode gretap remote 192.0.2.2 local 192.0.2.1 netstack 198.51.100.9/24")); err == nil || !strings.Contains(err.Error(), "mode gretap needs a TAP device") {
		t.Errorf("gretap with netstack: %v", err)
	}
	// socks5-open lets an unauthenticated proxy listen beyond loopback.
	if _, err := Parse("ns", append(append([]string{}, base...), strings.Fields("netstack 198.51.100.9/24 socks5 192.0.2.1:1080 socks5-open")...)); err != nil {
		t.Errorf("socks5-open: %v", err)
	}
}
