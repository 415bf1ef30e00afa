package tunnel_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/tunnel"
	"github.com/gretun/gretun/tunnel/tunneltest"
)

// hubAndSpokes is a hub (192.0.2.1, mg0, inner 198.51.100.1) and spokes
// 192.0.2.2… (t0, inner 198.51.100.2…), point-to-point tunnels to the hub with
// keepalives, on one fake wire; or the same over another hubUnderlay.
type hubAndSpokes struct {
	w      *tunneltest.Wire
	u      hubUnderlay
	hub    *side
	spokes []*side
}

// hubUnderlay is what a hub and its spokes run over: the mode, the hub's
// underlay address (the spokes' follow it: 2 + i in the last byte) and
// the words both ends add (encap fou).
type hubUnderlay struct {
	mode  string
	hub   netip.Addr
	words string
}

var gre4 = hubUnderlay{mode: "gre", hub: addrA}

func (u hubUnderlay) spoke(i int) netip.Addr {
	b := u.hub.As16()
	b[15] = byte(2 + i)
	if u.hub.Is4() {
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return netip.AddrFrom16(b)
}

func newHubAndSpokes(t *testing.T, n int, hubWords, spokeWords string, neighs bool) *hubAndSpokes {
	return newHubAndSpokesOver(t, gre4, n, hubWords, spokeWords, neighs)
}

func newHubAndSpokesOver(t *testing.T, u hubUnderlay, n int, hubWords, spokeWords string, neighs bool) *hubAndSpokes {
	h := &hubAndSpokes{w: tunneltest.NewWire(), u: u}
	h.hub = newSide(t, h.w, u.hub, 8)
	mustAdd(t, h.hub, "mg0", fmt.Sprintf("mode %s local %s key 7 %s %s", u.mode, u.hub, u.words, hubWords))
	for i := range n {
		outer := u.spoke(i)
		s := newSide(t, h.w, outer, 8)
		mustAdd(t, s, "t0", fmt.Sprintf("mode %s remote %s local %s key 7 %s %s", u.mode, u.hub, outer, u.words, spokeWords))
		h.spokes = append(h.spokes, s)
		if neighs {
			mustNeigh(t, h.hub, fmt.Sprintf("%s lladdr %s dev mg0", spokeInner(i), outer))
		}
	}
	return h
}

func spokeOuter(i int) netip.Addr { return gre4.spoke(i) }
func spokeInner(i int) string     { return fmt.Sprintf("198.51.100.%d", 2+i) }

func mustNeigh(t testing.TB, s *side, words string) {
	t.Helper()
	n, err := config.ParseNeigh(strings.Fields(words), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.e.NeighAdd(n, false); err != nil {
		t.Fatal(err)
	}
}

// carries sends a packet from src's device to dst and checks it arrives
// byte for byte on to's device.
func carries(t *testing.T, from, to *tunneltest.Device, src, dst string) {
	t.Helper()
	pkt := udp4(src, dst, 100)
	from.Inject(pkt)
	if got := receive(t, to); !bytes.Equal(got, pkt) {
		t.Fatalf("%s -> %s changed in transit:\n got %x\nwant %x", src, dst, got, pkt)
	}
}

func keepaliveState(t *testing.T, s *side) string {
	st, err := s.e.Show("t0")
	if err != nil || st[0].Keepalive == nil {
		t.Fatalf("show: %v %+v", err, st)
	}
	return st[0].Keepalive.State
}

// TestMultipointHubAndSpokes: a hub with three spokes. Each spoke reaches
// the hub and the hub each spoke (only that spoke); spoke to spoke crosses
// the hub (the hub's kernel routes the packet back out of mg0: here the
// test does); the spokes' keepalives come up, reflected by the hub, which
// sends none of its own; a spoke cut off from the hub goes down while the
// others carry on; every neighbour has its own counters.
func TestMultipointHubAndSpokes(t *testing.T) {
	h := newHubAndSpokes(t, 3, "", "keepalive 50ms 5", true)
	hubDev := h.hub.dev("mg0")
	h.carriesAll(t)
	for _, s := range h.spokes[:2] {
		select {
		case p := <-s.dev("t0").Written:
			t.Fatalf("a packet for spoke 2 reached another spoke: %x", p)
		default:
		}
	}
	for i, s := range h.spokes {
		waitFor(t, fmt.Sprintf("spoke %d keepalive up with replies", i), func() bool {
			st, _ := s.e.Show("t0")
			return st[0].Keepalive.State == "up" && st[0].Keepalive.Received >= 3
		})
	}
	// Cut spoke 2 off: the hub no longer knows it, drops its packets.
	n, _ := config.ParseNeigh(strings.Fields(spokeInner(2)+" dev mg0"), true)
	if err := h.hub.e.NeighDel(n); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "spoke 2 keepalive down", func() bool { return keepaliveState(t, h.spokes[2]) == "down" })
	for i, s := range h.spokes[:2] {
		if st := keepaliveState(t, s); st != "up" {
			t.Errorf("spoke %d keepalive %s after spoke 2 was cut", i, st)
		}
		carries(t, s.dev("t0"), hubDev, spokeInner(i), "198.51.100.1")
	}
	if d := stats(t, h.hub, "mg0").Drops["no-neighbour"]; d == 0 {
		t.Error("the cut spoke's packets were not counted as no-neighbour")
	}
	// To spoke 2's address the hub now has no neighbour.
	hubDev.Inject(udp4("198.51.100.1", spokeInner(2), 10))
	waitStats(t, h.hub, "mg0", func(s tunnel.Stats) bool { return s.TxNoNeighbour == 1 })

	st, _ := h.hub.e.Show("mg0")
	if got := st[0].Stats.Reflected; got == 0 {
		t.Error("the hub reflected no keepalive")
	}
	if st[0].Keepalive != nil {
		t.Errorf("the hub runs keepalives: %+v", st[0].Keepalive)
	}
	if len(st[0].Neighbours) != 2 {
		t.Fatalf("hub neighbours: %+v", st[0].Neighbours)
	}
	for i, p := range st[0].Neighbours {
		if p.LLAddr != spokeOuter(i) || len(p.Dsts) != 1 || p.Dsts[0] != spokeInner(i) || p.Learned {
			t.Errorf("neighbour %d: %+v", i, p)
		}
		// Spoke 0: its packet to the hub, the one to spoke 2, and one
		// after the cut; sent: the hub's reply (and the forwarded one
		// for spoke 2's neighbour, now gone).
		wantRx := uint64(2)
		if i == 0 {
			wantRx = 3
		}
		if p.Stats.RxPackets != wantRx || p.Stats.TxPackets != 1 {
			t.Errorf("neighbour %s counters %+v, want %d received, 1 sent", p.LLAddr, p.Stats, wantRx)
		}
	}
}

// TestMultipointStranger: a tunnel to the hub from an address that is no
// neighbour gets nothing through; its packets are counted as no-neighbour.
func TestMultipointStranger(t *testing.T) {
	h := newHubAndSpokes(t, 1, "", "", true)
	stranger := newSide(t, h.w, spokeOuter(5), 8)
	mustAdd(t, stranger, "t0", "mode gre remote 192.0.2.1 local "+spokeOuter(5).String()+" key 7")
	stranger.dev("t0").Inject(udp4(spokeInner(0), "198.51.100.1", 10)) // claims spoke 0's inner address
	waitStats(t, h.hub, "mg0", func(s tunnel.Stats) bool { return s.Drops["no-neighbour"] == 1 })
	if n := h.hub.dev("mg0").WrittenPackets.Load(); n != 0 {
		t.Errorf("%d packets from a stranger reached the hub's device", n)
	}
}

// TestMultipointLearn: with learn, the hub takes each spoke's underlay
// address and inner source from its traffic and answers it; at most
// `learn N` are learnt; a configured neighbour is never taken over.
func TestMultipointLearn(t *testing.T) {
	h := newHubAndSpokes(t, 3, "learn 2", "", false)
	hubDev := h.hub.dev("mg0")
	mustNeigh(t, h.hub, "198.51.100.8/29 lladdr 192.0.2.9 dev mg0")
	nine := newSide(t, h.w, netip.MustParseAddr("192.0.2.9"), 8)
	mustAdd(t, nine, "t0", "mode gre remote 192.0.2.1 local 192.0.2.9 key 7")
	for i, s := range h.spokes[:2] {
		carries(t, s.dev("t0"), hubDev, spokeInner(i), "198.51.100.1")
		carries(t, hubDev, s.dev("t0"), "198.51.100.1", spokeInner(i))
		if i == 0 {
			// Spoke 0 claims an address of a configured neighbour's
			// prefix: delivered (spoke 0 is a neighbour now), but
			// 198.51.100.9 still leads to 192.0.2.9.
			carries(t, s.dev("t0"), hubDev, "198.51.100.9", "198.51.100.1")
			carries(t, hubDev, nine.dev("t0"), "198.51.100.1", "198.51.100.9")
		}
	}
	// The third is one too many: dropped until a learnt one expires.
	h.spokes[2].dev("t0").Inject(udp4(spokeInner(2), "198.51.100.1", 10))
	waitStats(t, h.hub, "mg0", func(s tunnel.Stats) bool { return s.Drops["learn-full"] == 1 })
	ns, err := h.hub.e.Neighs("mg0")
	if err != nil {
		t.Fatal(err)
	}
	want := []tunnel.Neigh{
		{Dev: "mg0", Dst: "198.51.100.2", LLAddr: spokeOuter(0), State: "LEARNED"},
		{Dev: "mg0", Dst: "198.51.100.3", LLAddr: spokeOuter(1), State: "LEARNED"},
		{Dev: "mg0", Dst: "198.51.100.8/29", LLAddr: netip.MustParseAddr("192.0.2.9"), State: "PERMANENT"},
	}
	if fmt.Sprint(ns) != fmt.Sprint(want) {
		t.Errorf("neigh show:\n got %v\nwant %v", ns, want)
	}
	if n := hubDev.WrittenPackets.Load(); n != 3 {
		t.Errorf("hub device got %d packets, want 3 (none from the spoke past the limit)", n)
	}
}

// TestNeighErrors: each refused neighbour command says why in one line
// and changes nothing.
func TestNeighErrors(t *testing.T) {
	w := tunneltest.NewWire()
	s := newSide(t, w, addrA, 8)
	mustAdd(t, s, "mg0", "mode gre local 192.0.2.1")
	mustAdd(t, s, "p2p", "mode gre remote 192.0.2.2 local 192.0.2.1 key 1")
	mustNeigh(t, s, "198.51.100.2 lladdr 192.0.2.2 dev mg0")
	for _, tc := range []struct {
		words   string
		del     bool
		replace bool
		want    string
	}{
		{"198.51.100.3 lladdr 192.0.2.3 dev p2p", false, false, "p2p is a point-to-point tunnel (remote 192.0.2.2)"},
		{"198.51.100.3 lladdr 192.0.2.3 dev nope", false, false, `no tunnel named "nope"`},
		{"198.51.100.3 lladdr 2001:db8::3 dev mg0", false, false, "lladdr 2001:db8::3 is not of the family of local 192.0.2.1"},
		{"198.51.100.3 lladdr 192.0.2.1 dev mg0", false, false, "the tunnel's own local address"},
		{"198.51.100.2 lladdr 192.0.2.3 dev mg0", false, false, "neighbour 198.51.100.2 dev mg0 exists (lladdr 192.0.2.2): use neigh replace"},
		{"198.51.100.3 dev mg0", true, false, "no neighbour 198.51.100.3 dev mg0"},
		{"198.51.100.2 dev p2p", true, false, "point-to-point"},
	} {
		n, err := config.ParseNeigh(strings.Fields(tc.words), tc.del)
		if err != nil {
			t.Fatal(err)
		}
		if tc.del {
			err = s.e.NeighDel(n)
		} else {
			err = s.e.NeighAdd(n, tc.replace)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v, want one line containing %q", tc.words, err, tc.want)
		}
	}
	ns, _ := s.e.Neighs("")
	if len(ns) != 1 || ns[0].String() != "198.51.100.2 dev mg0 lladdr 192.0.2.2 PERMANENT" {
		t.Errorf("neighbours after refused commands: %v", ns)
	}
	n, _ := config.ParseNeigh(strings.Fields("198.51.100.2 lladdr 192.0.2.3 dev mg0"), false)
	if err := s.e.NeighAdd(n, true); err != nil {
		t.Fatal(err)
	}
	if ns, _ := s.e.Neighs("mg0"); len(ns) != 1 || ns[0].LLAddr != n.LLAddr {
		t.Errorf("after replace: %v", ns)
	}
	if _, err := s.e.Neighs("p2p"); err == nil {
		t.Error("neigh show dev p2p: no error")
	}
	second, _ := config.Parse("mg1", strings.Fields("mode gre local 192.0.2.1"))
	if err := s.e.Add(second); err == nil || err.Error() != `tunnel "mg0" already uses gre remote any local 192.0.2.1 with the same key` {
		t.Errorf("a second multipoint tunnel with the same key: %v", err)
	}
	c, _ := config.Parse("mg0", strings.Fields("mode gre remote 192.0.2.5 local 192.0.2.1"))
	if err := s.e.Change(c); err == nil || !strings.Contains(err.Error(), "cannot change between a remote and none") {
		t.Errorf("change of a multipoint tunnel to point-to-point: %v", err)
	}
}

// TestMultipointPrefixes: a prefix behind a neighbour, the longest match
// winning, IPv6 inner packets too.
func TestMultipointPrefixes(t *testing.T) {
	h := newHubAndSpokes(t, 2, "", "", false)
	hubDev := h.hub.dev("mg0")
	mustNeigh(t, h.hub, "198.51.100.0/24 lladdr 192.0.2.2 dev mg0")
	mustNeigh(t, h.hub, "198.51.100.128/25 lladdr 192.0.2.3 dev mg0")
	mustNeigh(t, h.hub, "2001:db8:1::/48 lladdr 192.0.2.3 dev mg0")
	carries(t, hubDev, h.spokes[0].dev("t0"), "198.51.100.1", "198.51.100.7")
	carries(t, hubDev, h.spokes[1].dev("t0"), "198.51.100.1", "198.51.100.200")
	v6 := make([]byte, 48)
	v6[0], v6[5], v6[6], v6[7] = 0x60, 8, 17, 64
	copy(v6[24:], netip.MustParseAddr("2001:db8:1::5").AsSlice())
	hubDev.Inject(v6)
	if got := receive(t, h.spokes[1].dev("t0")); !bytes.Equal(got, v6) {
		t.Fatalf("IPv6 to a prefix: got %x", got)
	}
}

// TestMultipointReloadNeighs: SetNeighs (a reloaded config file) makes the
// configured neighbours exactly the file's; a wrong one changes nothing.
func TestMultipointReloadNeighs(t *testing.T) {
	w := tunneltest.NewWire()
	s := newSide(t, w, addrA, 8)
	mustAdd(t, s, "mg0", "mode gre local 192.0.2.1")
	mustNeigh(t, s, "198.51.100.2 lladdr 192.0.2.2 dev mg0")
	parse := func(words string) config.Neigh {
		n, err := config.ParseNeigh(strings.Fields(words), false)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	bad := []config.Neigh{parse("198.51.100.3 lladdr 192.0.2.3 dev mg0"), parse("198.51.100.4 lladdr 192.0.2.4 dev nope")}
	if err := s.e.SetNeighs(bad); err == nil {
		t.Fatal("SetNeighs with a neighbour of no tunnel: no error")
	}
	if ns, _ := s.e.Neighs("mg0"); len(ns) != 1 || ns[0].Dst != "198.51.100.2" {
		t.Fatalf("a refused reload changed the neighbours: %v", ns)
	}
	if err := s.e.SetNeighs(bad[:1]); err != nil {
		t.Fatal(err)
	}
	if ns, _ := s.e.Neighs("mg0"); len(ns) != 1 || ns[0].Dst != "198.51.100.3" {
		t.Fatalf("after reload: %v", ns)
	}
}

// TestMultipointLearnExpires: a full learned table makes room by
// forgetting neighbours idle for LearnTTL, and only those.
func TestMultipointLearnExpires(t *testing.T) {
	h := newHubAndSpokes(t, 2, "learn 1", "", false)
	hubDev := h.hub.dev("mg0")
	carries(t, h.spokes[0].dev("t0"), hubDev, spokeInner(0), "198.51.100.1")
	h.spokes[1].dev("t0").Inject(udp4(spokeInner(1), "198.51.100.1", 10))
	waitStats(t, h.hub, "mg0", func(s tunnel.Stats) bool { return s.Drops["learn-full"] == 1 })
	tunnel.AgeLearned(h.hub.e, "mg0", tunnel.LearnTTL/2)
	h.spokes[1].dev("t0").Inject(udp4(spokeInner(1), "198.51.100.1", 10))
	waitStats(t, h.hub, "mg0", func(s tunnel.Stats) bool { return s.Drops["learn-full"] == 2 })
	tunnel.AgeLearned(h.hub.e, "mg0", tunnel.LearnTTL)
	carries(t, h.spokes[1].dev("t0"), hubDev, spokeInner(1), "198.51.100.1")
	carries(t, hubDev, h.spokes[1].dev("t0"), "198.51.100.1", spokeInner(1))
	if ns, _ := h.hub.e.Neighs("mg0"); len(ns) != 1 || ns[0].Dst != spokeInner(1) {
		t.Errorf("after expiry: %v", ns)
	}
}

// TestMultipointChange: `tunnel change` of a multipoint tunnel (here its
// key) reaches every neighbour's encapsulator and keeps the neighbours.
func TestMultipointChange(t *testing.T) {
	h := newHubAndSpokes(t, 2, "", "", true)
	hubDev := h.hub.dev("mg0")
	change := func(s *side, name, words string) {
		t.Helper()
		c, _ := s.e.Config(name)
		if err := c.Apply(strings.Fields(words)); err != nil {
			t.Fatal(err)
		}
		if err := s.e.Change(c); err != nil {
			t.Fatal(err)
		}
	}
	change(h.hub, "mg0", "key 8")
	for i, s := range h.spokes {
		change(s, "t0", "key 8")
		carries(t, hubDev, s.dev("t0"), "198.51.100.1", spokeInner(i))
		carries(t, s.dev("t0"), hubDev, spokeInner(i), "198.51.100.1")
	}
}

// TestMultipointUnderlays: a hub over ip6gre, and over GRE-in-UDP on
// either family (the kernel's NBMA ip_gre and ip6gre take `encap fou`
// too), with two configured spokes and one learnt: each spoke and the hub
// reach each other, spoke to spoke crosses the hub, the spokes'
// keepalives come up (the hub reflects them), IPv6 inside too, and the
// hub counts per neighbour.
func TestMultipointUnderlays(t *testing.T) {
	for _, u := range []hubUnderlay{
		{mode: "ip6gre", hub: addr6A},
		{mode: "gre", hub: addrA, words: "encap fou"},
		{mode: "ip6gre", hub: addr6A, words: "encap fou"},
	} {
		t.Run(strings.TrimSpace(u.mode+" "+u.words), func(t *testing.T) {
			h := newHubAndSpokesOver(t, u, 3, "learn", "keepalive 50ms 5", false)
			for i := range 2 {
				mustNeigh(t, h.hub, fmt.Sprintf("%s lladdr %s dev mg0", spokeInner(i), u.spoke(i)))
			}
			hubDev := h.hub.dev("mg0")
			hubSt, _ := h.hub.e.Show("mg0")
			spokeSt, _ := h.spokes[0].e.Show("t0")
			if hubSt[0].MTU != spokeSt[0].MTU {
				t.Errorf("device MTU: hub %d, spoke %d (the same overhead over the same underlay)", hubSt[0].MTU, spokeSt[0].MTU)
			}
			h.carriesAll(t)
			mustNeigh(t, h.hub, "2001:db8:1::/48 lladdr "+u.spoke(1).String()+" dev mg0")
			v6 := make([]byte, 48)
			v6[0], v6[5], v6[6], v6[7] = 0x60, 8, 17, 64
			copy(v6[24:], netip.MustParseAddr("2001:db8:1::5").AsSlice())
			hubDev.Inject(v6)
			if got := receive(t, h.spokes[1].dev("t0")); !bytes.Equal(got, v6) {
				t.Fatalf("IPv6 inside to a prefix: got %x", got)
			}
			for i, s := range h.spokes {
				waitFor(t, fmt.Sprintf("spoke %d keepalive up with replies", i), func() bool {
					st, _ := s.e.Show("t0")
					return st[0].Keepalive.State == "up" && st[0].Keepalive.Received >= 3
				})
			}
			st, _ := h.hub.e.Show("mg0")
			if st[0].Stats.Reflected == 0 || st[0].Keepalive != nil {
				t.Errorf("hub: reflected %d, keepalive %+v; want reflections and no keepalive of its own", st[0].Stats.Reflected, st[0].Keepalive)
			}
			if len(st[0].Neighbours) != 3 {
				t.Fatalf("hub neighbours: %+v", st[0].Neighbours)
			}
			for i, p := range st[0].Neighbours {
				if p.LLAddr != u.spoke(i) || p.Learned != (i == 2) || p.Stats.RxPackets == 0 || p.Stats.TxPackets == 0 {
					t.Errorf("neighbour %d: %+v", i, p)
				}
			}
		})
	}
}

// carriesAll checks that every spoke and the hub carry packets both ways,
// and spoke 0 to spoke 2 through the hub (the hub's kernel would route the
// packet back out of mg0: here the test does).
func (h *hubAndSpokes) carriesAll(t *testing.T) {
	t.Helper()
	hubDev := h.hub.dev("mg0")
	for i, s := range h.spokes {
		carries(t, s.dev("t0"), hubDev, spokeInner(i), "198.51.100.1")
		carries(t, hubDev, s.dev("t0"), "198.51.100.1", spokeInner(i))
	}
	pkt := udp4(spokeInner(0), spokeInner(2), 200)
	h.spokes[0].dev("t0").Inject(pkt)
	hubDev.Inject(receive(t, hubDev))
	if got := receive(t, h.spokes[2].dev("t0")); !bytes.Equal(got, pkt) {
		t.Fatalf("spoke to spoke: got %x", got)
	}
}
