package tunnel_test

import (
	"bytes"
	"strings"
	"syscall"
	"testing"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/tunnel"
	"github.com/gretun/gretun/tunnel/tunneltest"
)

// TestEngineDev: a tunnel bound to a device (`dev lo`) takes its MTU from
// the route out of that device and sends out of it (the socket gets its
// index, 1 for lo), over a raw socket and inside UDP; a device that does
// not exist is refused in one line and nothing is created.
func TestEngineDev(t *testing.T) {
	for _, tc := range []struct {
		words string
		mtu   int
	}{
		{"mode gre", 1376},
		{"mode ipip", 1380},
		{"mode gre encap fou encap-dport 4754", 1368},
	} {
		t.Run(tc.words, func(t *testing.T) {
			w := tunneltest.NewWire()
			a, b := newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
			a.host.Links = map[string]bool{"lo": true}
			a.host.DevMTU = map[string]int{"lo": 1400}
			mustAdd(t, a, "t0", tc.words+" remote 192.0.2.2 local 192.0.2.1 dev lo")
			mustAdd(t, b, "t0", tc.words+" remote 192.0.2.1 local 192.0.2.2")
			if st, _ := a.e.Show("t0"); st[0].MTU != tc.mtu || st[0].Config.Dev != "lo" {
				t.Errorf("device MTU %d, want %d; shown %q", st[0].MTU, tc.mtu, st[0].Config)
			}
			pkt := udp4("198.51.100.1", "203.0.113.1", 100)
			a.dev("t0").Inject(pkt)
			if got := receive(t, b.dev("t0")); !bytes.Equal(got, pkt) {
				t.Fatalf("packet changed in transit:\n got %x\nwant %x", got, pkt)
			}
			if tc.words == "mode gre" {
				if s := w.Socket(addrA, int(header.ProtoGRE)); s == nil || s.Via.Load() != 1 {
					t.Errorf("the raw socket did not send out of lo (index 1)")
				}
			}
			c, _ := config.Parse("t1", strings.Fields(tc.words+" remote 192.0.2.3 local 192.0.2.1 dev wan9"))
			if err := a.e.Add(c); err == nil || err.Error() != "dev wan9: no such device" {
				t.Errorf("a missing dev: %v", err)
			}
			if a.dev("t1") != nil {
				t.Error("a device was created for a refused tunnel")
			}
		})
	}
}

// TestMultipointDev: a multipoint tunnel bound to a device sends every
// neighbour's packets out of it.
func TestMultipointDev(t *testing.T) {
	w := tunneltest.NewWire()
	hub := newSide(t, w, addrA, 8)
	hub.host.Links = map[string]bool{"lo": true}
	mustAdd(t, hub, "mg0", "mode gre local 192.0.2.1 key 7 dev lo")
	spoke := newSide(t, w, spokeOuter(0), 8)
	mustAdd(t, spoke, "t0", "mode gre remote 192.0.2.1 local "+spokeOuter(0).String()+" key 7")
	mustNeigh(t, hub, spokeInner(0)+" lladdr "+spokeOuter(0).String()+" dev mg0")
	carries(t, hub.dev("mg0"), spoke.dev("t0"), "198.51.100.1", spokeInner(0))
	if s := w.Socket(addrA, int(header.ProtoGRE)); s == nil || s.Via.Load() != 1 {
		t.Errorf("the hub's raw socket did not send out of lo (index 1)")
	}
}

// TestEngineFwMark: a tunnel's `fwmark` marks what its socket sends, with
// no device named, and is refused in one line where this process may not
// mark packets.
func TestEngineFwMark(t *testing.T) {
	w := tunneltest.NewWire()
	a, b := newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
	mustAdd(t, a, "t0", "mode gre remote 192.0.2.2 local 192.0.2.1 fwmark 0x2a")
	mustAdd(t, b, "t0", "mode gre remote 192.0.2.1 local 192.0.2.2")
	pkt := udp4("198.51.100.1", "203.0.113.1", 100)
	a.dev("t0").Inject(pkt)
	if got := receive(t, b.dev("t0")); !bytes.Equal(got, pkt) {
		t.Fatalf("packet changed in transit:\n got %x\nwant %x", got, pkt)
	}
	if s := w.Socket(addrA, int(header.ProtoGRE)); s == nil || s.Mark.Load() != 42 || s.Via.Load() != 0 {
		t.Errorf("the raw socket did not send marked 42 by the routes")
	}

	c := newSide(t, w, addrA, 8, func(env *tunnel.Env) { env.CanMark = func() error { return syscall.EPERM } })
	cfg, _ := config.Parse("t1", strings.Fields("mode gre remote 192.0.2.3 local 192.0.2.1 fwmark 1"))
	if err := c.e.Add(cfg); err == nil || !strings.HasPrefix(err.Error(), "fwmark needs CAP_NET_ADMIN or CAP_NET_RAW") {
		t.Errorf("fwmark without the capability: %v", err)
	}
	if c.dev("t1") != nil {
		t.Error("a device was created for a refused tunnel")
	}
}
