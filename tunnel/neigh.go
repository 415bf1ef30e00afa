package tunnel

// Multipoint tunnels. A tunnel without a remote has a peer per neighbour
// (per underlay address) instead of one: its sending goroutine finds each
// packet's peer by the packet's inner destination (neighTable.peerFor),
// its underlay's receive loop by the packet's outer source
// (Tunnel.peerFrom). The table is published whole (copy on write) and
// read without a lock or an allocation; changes, rare, rebuild it under
// neighbours.mu.

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/decap"
	"github.com/gretun/gretun/encap"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/status"
)

// learnTTL is how long a learned neighbour lasts without traffic once the
// learned table is full: then it makes room for a new one.
const learnTTL = 5 * time.Minute

// neighTable is one published state of a multipoint tunnel's neighbours.
type neighTable struct {
	hosts    map[netip.Addr]*neighEntry   // /32 and /128 entries
	prefixes map[netip.Prefix]*neighEntry // wider ones, masked
	lens     []int                        // prefix lengths in prefixes, longest first
	peers    map[netip.Addr]*peer         // by underlay address
}

// neighEntry leads an inner destination to a peer.
type neighEntry struct {
	peer    *peer
	learned bool
	seen    atomic.Int64 // learned: last traffic from it (unix nanoseconds)
}

// peerFor is the peer an inner packet goes to: its destination's host
// entry, else its longest matching prefix; nil when none (or the packet
// is not IP).
func (nt *neighTable) peerFor(inner []byte) *peer {
	var dst netip.Addr
	switch header.IPVersion(inner) {
	case 4:
		if len(inner) < header.IPv4MinLen {
			return nil
		}
		dst = netip.AddrFrom4(header.IPv4(inner).Dst())
	case 6:
		if len(inner) < header.IPv6HeaderLen {
			return nil
		}
		dst = netip.AddrFrom16(header.IPv6(inner).Dst())
	default:
		return nil
	}
	if e := nt.lookup(dst); e != nil {
		return e.peer
	}
	return nil
}

// lookup is the entry for inner address a: exact host, else longest prefix.
func (nt *neighTable) lookup(a netip.Addr) *neighEntry {
	if e := nt.hosts[a]; e != nil {
		return e
	}
	for _, l := range nt.lens {
		if l >= a.BitLen() {
			continue
		}
		p, _ := a.Prefix(l)
		if e := nt.prefixes[p]; e != nil {
			return e
		}
	}
	return nil
}

// neighbours is a multipoint tunnel's neighbour state.
type neighbours struct {
	table atomic.Pointer[neighTable]

	mu      sync.Mutex
	sock    *socket                     // the underlay the peers send on
	static  map[netip.Prefix]netip.Addr // configured: inner destination → underlay address
	learned map[netip.Addr]*neighEntry  // learned: inner host → entry
	peers   map[netip.Addr]*peer        // every peer, kept across rebuilds
}

func newNeighbours(sock *socket) *neighbours {
	nb := &neighbours{sock: sock, static: map[netip.Prefix]netip.Addr{},
		learned: map[netip.Addr]*neighEntry{}, peers: map[netip.Addr]*peer{}}
	nb.table.Store(&neighTable{})
	return nb
}

// peerFrom is the peer a received packet came from: a point-to-point
// tunnel's only one, a multipoint tunnel's neighbour with the packet's
// outer source (nil when it is none).
func (t *Tunnel) peerFrom(p *decap.Packet) *peer {
	if t.nb == nil {
		return t.peer
	}
	return t.nb.table.Load().peers[p.Src]
}

// peerAt returns the peer at underlay address a, made if need be; nb.mu
// is held.
func (t *Tunnel) peerAt(a netip.Addr, learned bool) (*peer, error) {
	nb := t.nb
	if p := nb.peers[a]; p != nil {
		return p, nil
	}
	c := t.cfg.Load()
	enc, err := encapTo(c, a)
	if err != nil {
		return nil, err
	}
	p := newPeer(t, c, enc, endpointTo(c, nb.sock, a), t.e.underlayMTU(a, egressOf(c), false), t.MTU())
	p.learned.Store(learned)
	p.seen.Store(time.Now().UnixNano())
	nb.peers[a] = p
	return p, nil
}

// encapTo is the encapsulator of configuration c toward underlay address a.
func encapTo(c *config.Tunnel, a netip.Addr) (*encap.Encapsulator, error) {
	ec := c.Encap()
	ec.Remote = a
	return encap.New(ec)
}

// publish rebuilds the table from the static and learned entries; peers
// that no entry leads to are forgotten, but for learned peers still
// within learnTTL (a spoke heard from before it sent data). nb.mu is held.
func (t *Tunnel) publish() {
	nb := t.nb
	nt := &neighTable{hosts: map[netip.Addr]*neighEntry{}, prefixes: map[netip.Prefix]*neighEntry{}, peers: map[netip.Addr]*peer{}}
	for dst, a := range nb.static {
		e := &neighEntry{peer: nb.peers[a]}
		if dst.IsSingleIP() {
			nt.hosts[dst.Addr()] = e
		} else {
			nt.prefixes[dst] = e
			if !slices.Contains(nt.lens, dst.Bits()) {
				nt.lens = append(nt.lens, dst.Bits())
			}
		}
		nt.peers[a] = e.peer
		e.peer.learned.Store(false)
	}
	for a, e := range nb.learned {
		if _, static := nt.hosts[a]; !static {
			nt.hosts[a] = e
			nt.peers[e.peer.ep.to.Addr()] = e.peer
		}
	}
	old := time.Now().Add(-learnTTL).UnixNano()
	for a, p := range nb.peers {
		if nt.peers[a] == nil && p.learned.Load() && p.seen.Load() > old {
			nt.peers[a] = p
		}
		if nt.peers[a] == nil {
			delete(nb.peers, a)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(nt.lens)))
	nb.table.Store(nt)
}

// addNeigh configures n (replace: whether n may replace an entry for its
// destination); e.mu is held. It changes nothing when it fails.
func (t *Tunnel) addNeigh(n config.Neigh, replace bool) error {
	c := t.cfg.Load()
	if err := c.CheckNeigh(n); err != nil {
		return err
	}
	nb := t.nb
	nb.mu.Lock()
	defer nb.mu.Unlock()
	if old, ok := nb.static[n.Dst]; ok && !replace {
		return fmt.Errorf("neighbour %s dev %s exists (lladdr %s): use neigh replace", n.DstString(), n.Dev, old)
	}
	p, err := t.peerAt(n.LLAddr, false)
	if err != nil {
		return err
	}
	p.learned.Store(false)
	nb.static[n.Dst] = n.LLAddr
	if n.Dst.IsSingleIP() {
		delete(nb.learned, n.Dst.Addr()) // a configured entry overrides a learned one
	}
	t.publish()
	return nil
}

// delNeigh removes the entry for n.Dst, configured or learned; e.mu is held.
func (t *Tunnel) delNeigh(n config.Neigh) error {
	nb := t.nb
	nb.mu.Lock()
	defer nb.mu.Unlock()
	if _, ok := nb.static[n.Dst]; ok {
		delete(nb.static, n.Dst)
	} else if _, ok := nb.learned[n.Dst.Addr()]; ok && n.Dst.IsSingleIP() {
		delete(nb.learned, n.Dst.Addr())
	} else {
		return fmt.Errorf("no neighbour %s dev %s", n.DstString(), n.Dev)
	}
	t.publish()
	return nil
}

// setNeighs makes the configured neighbours exactly ns (each checked by
// the caller), keeping the learned ones; e.mu is held.
func (t *Tunnel) setNeighs(ns []config.Neigh) error {
	nb := t.nb
	nb.mu.Lock()
	defer nb.mu.Unlock()
	for _, n := range ns {
		if _, err := t.peerAt(n.LLAddr, false); err != nil {
			return err
		}
	}
	clear(nb.static)
	for _, n := range ns {
		nb.static[n.Dst] = n.LLAddr
		if n.Dst.IsSingleIP() {
			delete(nb.learned, n.Dst.Addr())
		}
	}
	t.publish()
	return nil
}

// learnPeer makes the source of a packet that is no neighbour one, when
// the tunnel learns and has room: the learned table holds at most `learn`
// peers and as many inner addresses. Called by the receive loop, for a
// packet decap found sound (r).
func (t *Tunnel) learnPeer(p *decap.Packet, r decap.Reason) (*peer, decap.Reason) {
	limit := t.cfg.Load().Learn
	if r != decap.OK {
		return nil, r
	}
	if limit == 0 {
		return nil, decap.NoNeighbour
	}
	nb := t.nb
	nb.mu.Lock()
	defer nb.mu.Unlock()
	if nb.learnedPeers() >= limit {
		t.expireLearned()
		if nb.learnedPeers() >= limit {
			return nil, decap.LearnFull
		}
	}
	pr, err := t.peerAt(p.Src, true)
	if err != nil {
		return nil, decap.NoNeighbour
	}
	t.publish()
	return pr, decap.OK
}

// learnedPeers counts the learned peers; nb.mu is held.
func (nb *neighbours) learnedPeers() int {
	n := 0
	for _, p := range nb.peers {
		if p.learned.Load() {
			n++
		}
	}
	return n
}

// expireLearned forgets learned entries and peers not heard from within
// learnTTL; nb.mu is held.
func (t *Tunnel) expireLearned() {
	nb := t.nb
	old := time.Now().Add(-learnTTL).UnixNano()
	freed := false
	for a, e := range nb.learned {
		if e.seen.Load() <= old {
			delete(nb.learned, a)
			freed = true
		}
	}
	for a, p := range nb.peers {
		if p.learned.Load() && p.seen.Load() <= old {
			delete(nb.peers, a) // publish drops what still led to it
			freed = true
		}
	}
	if freed {
		for a, e := range nb.learned {
			if nb.peers[e.peer.ep.to.Addr()] != e.peer {
				delete(nb.learned, a)
			}
		}
		t.publish()
	}
}

// received accounts a data packet from peer pr and, on a learning tunnel,
// learns or confirms that its inner source is behind pr. Called by the
// receive loop.
func (t *Tunnel) received(pr *peer, inner []byte, limit int) {
	pr.stats.rxPackets.Add(1)
	pr.stats.rxBytes.Add(uint64(len(inner)))
	if limit == 0 {
		return
	}
	now := time.Now().UnixNano()
	var src netip.Addr
	switch header.IPVersion(inner) {
	case 4:
		src = netip.AddrFrom4(header.IPv4(inner).Src())
	case 6:
		src = netip.AddrFrom16(header.IPv6(inner).Src())
	}
	if !src.IsGlobalUnicast() {
		return
	}
	e := t.nb.table.Load().lookup(src)
	switch {
	case e != nil && !e.learned:
		return // configured: never overridden by traffic
	case e != nil && e.peer == pr:
		e.seen.Store(now)
		return
	}
	t.learnInner(src, pr, limit, now) // new, or moved to another peer
}

// learnInner records that inner host src is behind pr, within the limit.
func (t *Tunnel) learnInner(src netip.Addr, pr *peer, limit int, now int64) {
	nb := t.nb
	nb.mu.Lock()
	defer nb.mu.Unlock()
	if nb.peers[pr.ep.to.Addr()] != pr {
		return // forgotten meanwhile
	}
	if _, moving := nb.learned[src]; !moving && len(nb.learned) >= limit {
		t.expireLearned()
		if len(nb.learned) >= limit {
			return // full: the packet is delivered, its source not learned
		}
	}
	e := &neighEntry{peer: pr, learned: true}
	e.seen.Store(now)
	nb.learned[src] = e
	t.publish()
}

// neighList is the tunnel's entries as `neigh show` prints them.
func (t *Tunnel) neighList() []status.Neigh {
	nt := t.nb.table.Load()
	var out []status.Neigh
	add := func(dst string, e *neighEntry) {
		state := "PERMANENT"
		if e.learned {
			state = "LEARNED"
		}
		out = append(out, status.Neigh{Dev: t.name, Dst: dst, LLAddr: e.peer.ep.to.Addr(), State: state})
	}
	for a, e := range nt.hosts {
		add(a.String(), e)
	}
	for p, e := range nt.prefixes {
		add(p.String(), e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dst < out[j].Dst })
	return out
}

// peerStatus is what `tunnel show` prints of a multipoint tunnel's peers.
func (t *Tunnel) peerStatus(now time.Time) []status.Peer {
	nt := t.nb.table.Load()
	dsts := map[*peer][]string{}
	for _, n := range t.neighList() {
		p := nt.peers[n.LLAddr]
		dsts[p] = append(dsts[p], n.Dst)
	}
	out := make([]status.Peer, 0, len(nt.peers))
	for a, p := range nt.peers {
		out = append(out, status.Peer{LLAddr: a, Dsts: dsts[p], Learned: p.learned.Load(),
			PathMTU: p.pmtu.Effective(now), Stats: p.stats.snapshot()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LLAddr.Less(out[j].LLAddr) })
	return out
}

// peerStats count one peer's share of a multipoint tunnel's traffic.
type peerStats struct {
	rxPackets, rxBytes, rxErrors, txPackets, txBytes atomic.Uint64
}

func (s *peerStats) snapshot() status.PeerStats {
	return status.PeerStats{RxPackets: s.rxPackets.Load(), RxBytes: s.rxBytes.Load(), RxErrors: s.rxErrors.Load(),
		TxPackets: s.txPackets.Load(), TxBytes: s.txBytes.Load()}
}

// eachPeer calls fn for every peer of the tunnel.
func (t *Tunnel) eachPeer(fn func(*peer)) {
	if t.nb == nil {
		fn(t.peer)
		return
	}
	for _, p := range t.nb.table.Load().peers {
		fn(p)
	}
}
