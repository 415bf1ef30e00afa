package rawsock

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/internal/testnet"
)

// TestTooBigFromRouter checks what the kernel really delivers when a router
// cannot forward one of our DF outer packets: namespace a (192.0.2.1) sends
// GRE to b (198.51.100.2) through router r, whose link to b has MTU 1400.
func TestTooBigFromRouter(t *testing.T) {
	skipShort(t)
	n := testnet.ForTest(t)
	a, r, b := mustNS(t, n, "a"), mustNS(t, n, "r"), mustNS(t, n, "b")
	must(t, n.Veth(a, "ua", r, "ra"))
	must(t, n.Veth(r, "rb", b, "ub"))
	must(t, n.Addr(a, "ua", "192.0.2.1/24"))
	must(t, n.Addr(r, "ra", "192.0.2.254/24"))
	must(t, n.Addr(r, "rb", "198.51.100.254/24"))
	must(t, n.Addr(b, "ub", "198.51.100.2/24"))
	must(t, n.Forward(r))
	for _, c := range [][]string{
		{r, "ip", "link", "set", "dev", "rb", "mtu", "1400"},
		{b, "ip", "link", "set", "dev", "ub", "mtu", "1400"},
		{a, "ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.254"},
		{b, "ip", "route", "add", "192.0.2.0/24", "via", "198.51.100.254"},
	} {
		if _, err := n.Exec(c[0], c[1:]...); err != nil {
			t.Fatal(err)
		}
	}

	tx := openIn(t, a, ProtoGRE)
	rx := openIn(t, b, ProtoGRE)
	closeAfter(t, rx)
	var ic *ICMPConn
	if err := testnet.InNS(a, func() (err error) { ic, err = OpenICMP(); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ic.Close() })
	time.AfterFunc(20*time.Second, func() { ic.Close() })

	dstB := [4]byte{198, 51, 100, 2}
	// A ping first: its echo reply must not come out of ReadTooBig.
	if _, err := n.Exec(a, "ping", "-c1", "-W5", "198.51.100.2"); err != nil {
		t.Fatal(err)
	}
	big := outer(ProtoGRE, addrA, dstB, 7, true, greBody(42, 0, 1476-28))
	if n, err := tx.WriteBatch([][]byte{big}); n != 1 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	tb, err := ic.ReadTooBig(make([]byte, 1500))
	if err != nil {
		t.Fatal(err)
	}
	want := TooBig{
		From: netip.MustParseAddr("192.0.2.254"),
		Src:  netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("198.51.100.2"),
		Proto: ProtoGRE, GREFlags: header.GREFlagKey, GREType: header.EtherTypeIPv4, Key: 42, MTU: 1400,
	}
	if diff := cmp.Diff(want, tb, cmpopts.IgnoreFields(TooBig{}, "Quote"), cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
		t.Errorf("ReadTooBig (-want +got):\n%s", diff)
	}
	// The router quotes our header (before decrementing TTL) and more
	// than the 8 bytes RFC 792 requires: the GRE key is there.
	if len(tb.Quote) < 28 || !bytes.Equal(tb.Quote[:28], big[:28]) {
		t.Errorf("quote % x does not start with our header and GRE header % x", tb.Quote[:min(28, len(tb.Quote))], big[:28])
	}
	t.Logf("router quoted %d bytes of our %d-byte packet", len(tb.Quote), len(big))

	// The kernel recorded the path MTU as a route exception too.
	out, err := n.Exec(a, "ip", "route", "get", "198.51.100.2")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "mtu 1400") {
		t.Errorf("ip route get after Fragmentation Needed: %q, want a cached mtu 1400", out)
	}

	// DF clear: the router fragments and b's kernel reassembles, so b's
	// socket reads the whole packet.
	noDF := outer(ProtoGRE, addrA, dstB, 8, false, greBody(42, 1, 1476-28))
	if n, err := tx.WriteBatch([][]byte{noDF}); n != 1 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	pkts, err := readN(rx, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	// The router decremented the TTL (and fixed the checksum).
	if len(pkts[0]) != len(noDF) || !bytes.Equal(pkts[0][20:], noDF[20:]) || pkts[0][8] != noDF[8]-1 {
		t.Errorf("b received %d bytes, TTL %d; want the %d-byte packet with TTL %d", len(pkts[0]), pkts[0][8], len(noDF), noDF[8]-1)
	}

	if err := ic.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.ReadTooBig(make([]byte, 1500)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadTooBig after Close: %v, want net.ErrClosed", err)
	}
}

func mustNS(t *testing.T, n *testnet.Net, name string) string {
	t.Helper()
	ns, err := n.NS(name)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
