package config

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseNeigh(t *testing.T) {
	for _, tc := range []struct {
		words string
		del   bool
		want  Neigh
	}{
		{"198.51.100.2 lladdr 192.0.2.2 dev mg0", false, Neigh{"mg0", netip.MustParsePrefix("198.51.100.2/32"), netip.MustParseAddr("192.0.2.2")}},
		{"to 203.0.113.0/24 dev mg0 lladdr 192.0.2.3 nud permanent", false, Neigh{"mg0", netip.MustParsePrefix("203.0.113.0/24"), netip.MustParseAddr("192.0.2.3")}},
		{"2001:db8::2 lladdr 192.0.2.2 dev mg0", false, Neigh{"mg0", netip.MustParsePrefix("2001:db8::2/128"), netip.MustParseAddr("192.0.2.2")}},
		{"198.51.100.2 dev mg0", true, Neigh{"mg0", netip.MustParsePrefix("198.51.100.2/32"), netip.Addr{}}},
	} {
		got, err := ParseNeigh(strings.Fields(tc.words), tc.del)
		if err != nil || got != tc.want {
			t.Errorf("%q: %+v, %v; want %+v", tc.words, got, err, tc.want)
		}
		if !tc.del {
			back, err := ParseNeigh(strings.Fields(got.String()), false)
			if err != nil || back != got {
				t.Errorf("%q does not parse back: %+v, %v", got.String(), back, err)
			}
		}
	}
}

func TestParseNeighErrors(t *testing.T) {
	for _, tc := range []struct {
		words string
		del   bool
		want  string
	}{
		{"lladdr 192.0.2.2 dev mg0", false, "missing neighbour address"},
		{"198.51.100.2 lladdr 192.0.2.2", false, "missing dev"},
		{"198.51.100.2 dev mg0", false, "missing lladdr"},
		{"198.51.100.2 lladdr 192.0.2.2 dev mg0", true, "neigh del takes no lladdr"},
		{"198.51.100.2 lladdr 00:11:22:33:44:55 dev mg0", false, `invalid lladdr "00:11:22:33:44:55"`},
		{"198.51.100.2 lladdr 224.0.0.1 dev mg0", false, "lladdr 224.0.0.1 is not a unicast address"},
		{"198.51.100.2 lladdr 0.0.0.0 dev mg0", false, "is not a unicast address"},
		{"198.51.100.0/33 lladdr 192.0.2.2 dev mg0", false, `invalid neighbour "198.51.100.0/33"`},
		{"198.51.100.1/24 lladdr 192.0.2.2 dev mg0", false, "host bits set: 198.51.100.0/24?"},
		{"fe80::1%eth0 lladdr 192.0.2.2 dev mg0", false, "invalid neighbour"},
		{"198.51.100.2 198.51.100.3 lladdr 192.0.2.2 dev mg0", false, `unexpected "198.51.100.3"`},
		{"198.51.100.2 lladdr 192.0.2.2 dev", false, `missing value after "dev"`},
		{"198.51.100.2 lladdr 192.0.2.2 dev mg0 nud reachable", false, "only permanent"},
		{"198.51.100.2 lladdr 192.0.2.2 dev a/b", false, `invalid tunnel name "a/b"`},
	} {
		_, err := ParseNeigh(strings.Fields(tc.words), tc.del)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want one line containing %q", tc.words, err, tc.want)
		}
	}
}

// TestLoadNeighs: neighbour lines belong to the file's multipoint tunnels.
func TestLoadNeighs(t *testing.T) {
	const hub = "mg0 mode gre local 192.0.2.1 key 7\np2p mode gre remote 192.0.2.9 local 192.0.2.1\nmg6 mode ip6gre local 2001:db8::1 encap fou\n"
	f, err := LoadAll("a.conf", strings.NewReader(hub+"neigh add 198.51.100.2 lladdr 192.0.2.2 dev mg0\nneigh 198.51.100.0/24 lladdr 192.0.2.2 dev mg0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tunnels) != 3 || len(f.Neighs) != 2 || f.Neighs[1].Dst != netip.MustParsePrefix("198.51.100.0/24") {
		t.Errorf("loaded %+v", f)
	}
	for _, tc := range []struct{ lines, want string }{
		{"neigh add 198.51.100.2 lladdr 192.0.2.2 dev p2p\n", "a.conf:4: neigh 198.51.100.2: p2p is a point-to-point tunnel"},
		{"neigh add 198.51.100.2 lladdr 192.0.2.2 dev nope\n", `a.conf:4: neigh 198.51.100.2: no tunnel named "nope"`},
		{"neigh add 198.51.100.2 lladdr 2001:db8::2 dev mg0\n", "a.conf:4: neigh 198.51.100.2: lladdr 2001:db8::2 is not of the family of local 192.0.2.1"},
		{"neigh add 198.51.100.2 lladdr 192.0.2.1 dev mg0\n", "a.conf:4: neigh 198.51.100.2: lladdr 192.0.2.1 is the tunnel's own local address"},
		{"neigh add 198.51.100.2 lladdr 192.0.2.2 dev mg0\nneigh add 198.51.100.2 lladdr 192.0.2.3 dev mg0\n", "a.conf:5: neigh 198.51.100.2 dev mg0: defined twice (first on line 4)"},
		{"neigh add 2001:db8:1::2 lladdr 192.0.2.2 dev mg6\n", "a.conf:4: neigh 2001:db8:1::2: lladdr 192.0.2.2 is not of the family of local 2001:db8::1"},
		{"neigh add 2001:db8:1::2 lladdr fe80::2 dev mg6\n", "a.conf:4: neigh: lladdr fe80::2 is not a unicast address"},
		{"neigh add 198.51.100.2 dev mg0\n", "a.conf:4: neigh: missing lladdr"},
	} {
		_, err := LoadAll("a.conf", strings.NewReader(hub+tc.lines))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want one line starting %q", tc.lines, err, tc.want)
		}
	}
}

// FuzzParseNeigh: any words parse or fail without panicking, and what
// parses prints as words that parse back to the same neighbour.
func FuzzParseNeigh(f *testing.F) {
	for _, s := range []string{
		"198.51.100.2 lladdr 192.0.2.2 dev mg0",
		"to 203.0.113.0/24 dev mg0 lladdr 192.0.2.3 nud permanent",
		"2001:db8::/32 lladdr 192.0.2.2 dev mg0",
		"198.51.100.1/24 lladdr 192.0.2.2 dev",
	} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, del bool) {
		n, err := ParseNeigh(strings.Fields(s), del)
		if err != nil || del {
			return
		}
		back, err := ParseNeigh(strings.Fields(n.String()), false)
		if err != nil || back != n {
			t.Fatalf("%q parsed to %+v, printed %q, parsed back %+v, %v", s, n, n.String(), back, err)
		}
	})
}
