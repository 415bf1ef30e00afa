package rawsock

import (
	"testing"

	"github.com/gretun/gretun/internal/testnet"
)

// openIn opens a Conn for proto inside ns, closed when t ends.
func openIn(t testing.TB, ns string, proto int) *Conn {
	t.Helper()
	var c *Conn
	err := testnet.InNS(ns, func() (err error) {
		c, err = Open(proto)
		return err
	})
	if err != nil {
		t.Fatalf("Open(%d) in %s: %v", proto, ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newPair makes namespaces a (192.0.2.1/24) and b (192.0.2.2/24) joined by a
// veth pair with the given MTU.
func newPair(t testing.TB, mtu string) (n *testnet.Net, a, b string) {
	t.Helper()
	skipShort(t)
	n = testnet.ForTest(t)
	a, err := n.NS("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err = n.NS("b")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Veth(a, "ua", b, "ub"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ ns, dev, cidr string }{{a, "ua", "192.0.2.1/24"}, {b, "ub", "192.0.2.2/24"}} {
		if err := n.Addr(s.ns, s.dev, s.cidr); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Exec(s.ns, "ip", "link", "set", "dev", s.dev, "mtu", mtu); err != nil {
			t.Fatal(err)
		}
	}
	return n, a, b
}

// skipShort skips namespace tests under -short (make unit: no privileges).
func skipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs root and network namespaces; skipped with -short")
	}
}
