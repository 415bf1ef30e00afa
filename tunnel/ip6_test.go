package tunnel_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/tunnel/tunneltest"
)

var (
	addr6A = netip.MustParseAddr("2001:db8::1")
	addr6B = netip.MustParseAddr("2001:db8::2")
)

// TestEngineIP6OnePerPair: like Linux, one ip6tnl tunnel (ip6ip6 or ipip6)
// per address pair whatever its mode, and one ip6gre per pair and key; a
// second is refused with a clear error, by add and by reload alike.
func TestEngineIP6OnePerPair(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addr6A, 8)
	const pair = " remote 2001:db8::2 local 2001:db8::1"
	mustAdd(t, a, "t0", "mode ip6ip6"+pair)
	mustAdd(t, a, "g0", "mode ip6gre"+pair)
	mustAdd(t, a, "g1", "mode ip6gre key 1"+pair)
	mustAdd(t, a, "o0", "mode ipip6 remote 2001:db8::3 local 2001:db8::1")
	for _, tc := range []struct{ name, words, want string }{
		{"t1", "mode ipip6" + pair, `tunnel "t0" already uses ip6ip6 remote 2001:db8::2 local 2001:db8::1: like Linux, one ip6ip6 or ipip6 tunnel per address pair`},
		{"t2", "mode ip6ip6" + pair, "same key"},
		{"g2", "mode ip6gre" + pair, `tunnel "g0" already uses ip6gre`},
		{"g3", "mode ip6gre key 1" + pair, "same key"},
		{"o1", "mode ip6ip6 remote 2001:db8::3 local 2001:db8::1", `tunnel "o0" already uses ipip6`},
	} {
		c, err := config.Parse(tc.name, strings.Fields(tc.words))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.e.Add(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("add %s %s: %v, want an error with %q", tc.name, tc.words, err, tc.want)
		}
	}
	if names := a.e.Names(); len(names) != 4 {
		t.Errorf("tunnels after refused adds: %v", names)
	}
	var want []config.Tunnel
	for _, l := range []string{"x mode ip6ip6" + pair, "y mode ipip6" + pair} {
		f := strings.Fields(l)
		c, err := config.Parse(f[0], f[1:])
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, c)
	}
	if err := a.e.Reload(want); err == nil || !strings.Contains(err.Error(), "same endpoints") {
		t.Errorf("reload with ip6ip6 and ipip6 on one pair: %v", err)
	}
}
