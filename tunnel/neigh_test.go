package tunnel

import (
	"net/netip"
	"testing"
)

// testTable builds a published table over fake peers, one per lladdr.
func testTable(neighs ...string) (*neighTable, map[string]*peer) {
	nb := newNeighbours(nil)
	tun := &Tunnel{nb: nb}
	peers := map[string]*peer{}
	for i := 0; i+1 < len(neighs); i += 2 {
		dst, ll := netip.MustParsePrefix(neighs[i]), netip.MustParseAddr(neighs[i+1])
		if peers[neighs[i+1]] == nil {
			peers[neighs[i+1]] = &peer{ep: endpoint{to: netip.AddrPortFrom(ll, 0)}}
			nb.peers[ll] = peers[neighs[i+1]]
		}
		nb.static[dst] = ll
	}
	tun.publish()
	return nb.table.Load(), peers
}

func TestNeighTableLookup(t *testing.T) {
	nt, p := testTable(
		"203.0.113.2/32", "192.0.2.2",
		"198.51.100.0/24", "192.0.2.3",
		"198.51.100.128/25", "192.0.2.4",
		"0.0.0.0/0", "192.0.2.5",
		"2001:db8::/32", "192.0.2.3",
		"2001:db8::7/128", "192.0.2.2",
	)
	for _, tc := range []struct {
		dst  string
		want *peer
	}{
		{"203.0.113.2", p["192.0.2.2"]},
		{"198.51.100.1", p["192.0.2.3"]},
		{"198.51.100.129", p["192.0.2.4"]},
		{"203.0.113.1", p["192.0.2.5"]}, // the default route
		{"2001:db8::1", p["192.0.2.3"]},
		{"2001:db8::7", p["192.0.2.2"]},
		{"2001:db9::1", nil}, // no IPv6 default
	} {
		pkt := make([]byte, 40)
		a := netip.MustParseAddr(tc.dst)
		if a.Is4() {
			pkt[0] = 0x45
			copy(pkt[16:], a.AsSlice())
		} else {
			pkt[0] = 0x60
			copy(pkt[24:], a.AsSlice())
		}
		if got := nt.peerFor(pkt); got != tc.want {
			t.Errorf("%s: peer %p, want %p", tc.dst, got, tc.want)
		}
		if n := testing.AllocsPerRun(100, func() { nt.peerFor(pkt) }); n != 0 {
			t.Errorf("%s: lookup allocates %v times", tc.dst, n)
		}
	}
	for _, bad := range [][]byte{nil, {0x45}, {0x60, 0}, make([]byte, 40)} {
		if got := nt.peerFor(bad); got != nil {
			t.Errorf("peerFor(%x) = %p, want none", bad, got)
		}
	}
	if len(nt.peers) != 4 || len(nt.lens) != 4 || nt.lens[0] != 32 || nt.lens[3] != 0 {
		t.Errorf("table: %d peers, prefix lengths %v", len(nt.peers), nt.lens)
	}
}

// TestNeighPublishForgetsPeers: a peer no entry leads to is forgotten.
func TestNeighPublishForgetsPeers(t *testing.T) {
	nb := newNeighbours(nil)
	tun := &Tunnel{nb: nb}
	a, b := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	nb.peers[a], nb.peers[b] = &peer{}, &peer{}
	nb.static[netip.MustParsePrefix("203.0.113.2/32")] = a
	tun.publish()
	if _, ok := nb.peers[b]; ok {
		t.Error("a peer without entries was kept")
	}
	if nb.table.Load().peers[a] == nil {
		t.Error("the peer of an entry was lost")
	}
}

// TestReceivedAllocs: accounting a packet from a neighbour, and confirming
// a learned inner source, allocate nothing.
func TestReceivedAllocs(t *testing.T) {
	nb := newNeighbours(nil)
	tun := &Tunnel{nb: nb}
	a := netip.MustParseAddr("192.0.2.2")
	pr := &peer{ep: endpoint{to: netip.AddrPortFrom(a, 0)}}
	pr.learned.Store(true)
	nb.peers[a] = pr
	src := netip.MustParseAddr("198.51.100.2")
	e := &neighEntry{peer: pr, learned: true}
	nb.learned[src] = e
	tun.publish()
	pkt := make([]byte, 40)
	pkt[0] = 0x45
	copy(pkt[12:], src.AsSlice())
	if n := testing.AllocsPerRun(100, func() { tun.received(pr, pkt, 1) }); n != 0 {
		t.Errorf("received allocates %v times", n)
	}
	if pr.stats.rxPackets.Load() == 0 || e.seen.Load() == 0 {
		t.Error("received neither counted the packet nor confirmed its source")
	}
}
