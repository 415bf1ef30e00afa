package tunnel

// The receiving path: from an outer packet on the underlay to an inner
// packet on the device. A packet's walk through this file:
//
//  1. receive, one goroutine per underlay shared by all the tunnels on it,
//     reads a batch of outer packets into buffers large enough for any
//     IPv4 packet, with room in front for a device's headroom.
//  2. decap.Parse (Parse6 over IPv6) validates the outer headers and finds the inner packet:
//     an offset into the same buffer, no copy. A GRE checksum that a
//     sender on this host left to offload is completed first
//     (checksumCompleter).
//  3. The packet's key (packetKey: protocol, outer source and destination,
//     GRE key) finds its tunnel (Engine.lookup: a multipoint tunnel's key
//     has no source), and the tunnel the peer it came from (peerFrom: a
//     multipoint tunnel's neighbour with that outer source, else learnt
//     or dropped, neigh.go). A packet no tunnel claims is dropped and
//     counted as unmatched, never answered.
//  4. The peer's receiver applies the tunnel's receive policy: required
//     checksum, key and sequence numbers (decap.Receiver.Accept).
//  5. By kind: data has its ECN decapsulated (RFC 6040) and joins its
//     tunnel's pending batch; a returned keepalive goes to the peer's
//     keepalive machine (keepaliveReply); another router's keepalive
//     probe is readied to be sent back (mayReflect).
//  6. deliver writes each tunnel's pending packets to its device in one
//     call, with their MSS clamped; the probes to reflect go out on the
//     underlay in one batch.

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/gretun/gretun/decap"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/pmtu"
	"github.com/gretun/gretun/status"
)

// rxBatch is how many outer packets one receive call takes at most.
const rxBatch = 128

// rxBufSize holds the largest IPv6 packet without a jumbogram option, which
// is larger than any IPv4 packet (the kernel reassembles fragments before
// a raw socket sees them), plus room for the TUN's virtio header.
const rxBufSize = header.IPv6HeaderLen + header.IPv6MaxPayload + 64

// receive is the receive loop: read a batch, validate and demultiplex each
// packet, then hand each tunnel its packets in one TUN write.
func (s *socket) receive() {
	defer close(s.done)
	bufs := make([][]byte, rxBatch)
	for i := range bufs {
		bufs[i] = make([]byte, rxBufSize)
	}
	sizes := make([]int, rxBatch)
	from := make([]netip.AddrPort, rxBatch)
	// A UDP underlay hands a coalesced datagram whole when the fast path
	// takes it (rxgso.go), marked by its segment size in segs.
	segs := make([]int, rxBatch)
	gro, _ := s.conn.(groReader)
	whole := s.wholeGRO
	var (
		groups  rxGroups
		reflect [][]byte
		p       decap.Packet
		errRun  int
	)
	for {
		var n int
		var err error
		if gro != nil {
			n, err = gro.ReadBatchGRO(bufs, sizes, segs, whole)
		} else {
			n, err = s.conn.ReadBatch(bufs, sizes, from)
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return
			}
			// Transient (ENOBUFS, ENOMEM): back off a little, never spin.
			errRun++
			time.Sleep(time.Duration(min(errRun, 100)) * time.Millisecond)
			continue
		}
		errRun = 0
		var last *Tunnel
		var lastKey demuxKey
		for i := 0; i < n; i++ {
			if gro != nil && segs[i] != 0 {
				groups.deliver() // what came before it goes first
				s.receiveWhole(bufs[i], sizes[i], segs[i], &p)
				continue
			}
			pkt := bufs[i][:sizes[i]]
			r := s.parse(pkt, &p)
			if r == decap.GREChecksum && s.offload != nil && s.offload.CompleteChecksum(pkt) {
				r = s.parse(pkt, &p)
			}
			if p.Proto == 0 {
				s.e.unmatched.drop(r) // not even a sound outer header
				continue
			}
			// A batch's packets mostly belong to one tunnel: look it
			// up again only when the key changes.
			k := packetKey(&p)
			t := last
			if t == nil || k != lastKey {
				t = s.e.lookup(k)
				last, lastKey = t, k
			}
			if t == nil {
				if r == decap.OK {
					r = decap.NoTunnel
				}
				s.e.unmatched.drop(r)
				continue
			}
			pr := t.peerFrom(&p)
			if pr == nil {
				// A multipoint tunnel, and a source that is no
				// neighbour: learnt, or dropped.
				if pr, r = t.learnPeer(&p, r); pr == nil {
					t.counters.drop(r)
					if cp := t.tap.Load(); cp != nil {
						cp.dropRx(pkt, r)
					}
					continue
				}
			}
			if p.Kind == decap.Reflect && t.cfg.Load().NoReflect {
				p.Kind = decap.Data // `noreflect`: the host routes it, or not
			}
			if r == decap.OK {
				r = t.carries(&p)
			}
			if r == decap.OK {
				r = pr.recv.Load().Accept(&p)
			}
			cp := t.tap.Load() // nil unless someone captures
			if r != decap.OK {
				t.counters.drop(r)
				if cp != nil {
					cp.dropRx(pkt, r)
				}
				if t.nb != nil {
					pr.stats.rxErrors.Add(1)
				}
				continue
			}
			if cp != nil {
				cp.outer(false, pkt)
			}
			if t.nb != nil && t.cfg.Load().Learn != 0 {
				pr.seen.Store(time.Now().UnixNano()) // a learned neighbour lives on
			}
			switch p.Kind {
			case decap.Data:
				inner := pkt[p.Start:p.End]
				decapECN := decap.DecapECN
				if t.ethernet {
					decapECN = decap.DecapECNFrame
				}
				if !decapECN(inner, p.TOS) {
					t.counters.drop(decap.InnerNotECT)
					if cp != nil {
						cp.dropRx(pkt, decap.InnerNotECT)
					}
					continue
				}
				if cp != nil {
					cp.innerPkt(false, inner)
				}
				if t.nb != nil {
					t.received(pr, inner, t.cfg.Load().Learn)
				}
				groups.add(t, bufs[i][p.Start-t.headroom:p.End], len(inner))
			case decap.Keepalive:
				pr.keepaliveReply(pkt[p.Start:p.End])
			case decap.Reflect:
				// Another router's keepalive probe: send its inner packet
				// straight back out of the underlay, as a router forwarding
				// it would, without touching the TUN device.
				if inner := pkt[p.Start:p.End]; pr.mayReflect(inner) {
					reflect = append(reflect, inner)
					if cp != nil {
						cp.outer(true, inner)
					}
				} else if cp != nil {
					cp.dropRx(pkt, pr.lastReflectDrop)
				}
			}
		}
		groups.deliver()
		if len(reflect) > 0 {
			// Only GRE packets are reflected, and s is a GRE socket
			// (raw, or UDP for GRE-in-UDP probes, whose inner packet is
			// IPv4/UDP or IPv6/UDP to the prober's port). They are forwarded, not sent
			// to a peer: the zero endpoint routes each by its own header.
			s.send(reflect, netip.AddrPort{}, Egress{}, &s.e.unmatched, nil, nil)
			reflect = reflect[:0]
		}
	}
}

// rxGroups are the packets one batch of a receive loop brought for each
// tunnel, for one device write per tunnel. They belong to the loop, as do
// the buffers they point into: a tunnel moving to another underlay (`tunnel
// change … encap fou`) may get packets from two loops for a while, and
// each loop writes its own before reusing its buffers.
type rxGroups struct {
	g    []rxGroup
	n    int // groups in use
	last int // the group of the last packet: the next one is mostly the same tunnel's
}

type rxGroup struct {
	t     *Tunnel
	pkts  [][]byte
	bytes uint64
}

// add queues pkt, an inner packet of n bytes with the device's headroom in
// front, for t.
func (r *rxGroups) add(t *Tunnel, pkt []byte, n int) {
	if r.last >= r.n || r.g[r.last].t != t {
		r.last = r.n
		for i := range r.n {
			if r.g[i].t == t {
				r.last = i
				break
			}
		}
		if r.last == r.n {
			if r.n == len(r.g) {
				r.g = append(r.g, rxGroup{})
			}
			r.g[r.n].t = t
			r.n++
		}
	}
	g := &r.g[r.last]
	g.pkts = append(g.pkts, pkt)
	g.bytes += uint64(n)
}

// deliver writes each tunnel's packets and empties the groups.
func (r *rxGroups) deliver() {
	for i := range r.n {
		g := &r.g[i]
		g.t.deliver(g.pkts, g.bytes)
		clear(g.pkts) // keep no pointer into the buffers, nor to the tunnel
		g.pkts, g.bytes, g.t = g.pkts[:0], 0, nil
	}
	r.n, r.last = 0, 0
}

// carries reports whether the tunnel's device takes the data packet p:
// Ethernet frames (0x6558) for gretap, IP for the others. Keepalives and
// reflected probes are IPv4 GRE on every GRE tunnel. It runs before the
// receive policy, so a packet refused here advances no sequence number.
func (t *Tunnel) carries(p *decap.Packet) decap.Reason {
	if p.Kind != decap.Data || (p.Type == header.EtherTypeTEB) == t.ethernet {
		return decap.OK
	}
	if t.ethernet {
		return decap.NotEthernet
	}
	return decap.NotIP
}

// deliver writes the packets the receive loop gathered for this tunnel to
// its TUN device in one call; called by the socket goroutine.
func (t *Tunnel) deliver(pkts [][]byte, bytes uint64) {
	if mss := t.clampMSS(); mss != 0 {
		for _, p := range pkts {
			if pmtu.ClampMSS(p[t.headroom:], mssFor(mss, p[t.headroom:])) {
				t.counters.add(txMSSClamped, 1)
			}
		}
	}
	_, err := t.dev.Write(pkts, t.headroom)
	t.countDelivered(uint64(len(pkts)), bytes, err)
	if err != nil {
		t.tap.Load().refused(false, pkts, t.headroom, status.DropDevice)
	}
}

// countDelivered counts n inner packets of bytes in all written to the
// device in one call, or refused with err: the device is down (`ip link
// set dev NAME down`) or going away, and the kernel refuses the whole
// write.
func (t *Tunnel) countDelivered(n, bytes uint64, err error) {
	c := &t.counters
	if err != nil {
		c.add(rxDevice, n)
		c.add(rxErrors, n)
		return
	}
	c.add(rxPackets, n)
	c.add(rxBytes, bytes)
}

// keepaliveReply handles a returned keepalive (GRE protocol type 0),
// called by the receiving socket goroutine.
func (p *peer) keepaliveReply(payload []byte) {
	m := p.ka.Load()
	if m == nil {
		p.t.counters.add(rxKeepaliveUnsolicited, 1)
		return
	}
	_, ev := m.Reply(time.Now(), payload)
	p.logEvent(ev)
}

// mayReflect readies another router's keepalive probe (decap.Reflect) in
// place to be returned through the underlay, as forwarding would: TTL
// decremented, refused when it expires or when the header carries options
// or fragment bits, and rate-limited. Every refusal is a counted drop.
// Called by the receiving socket goroutine.
func (p *peer) mayReflect(inner []byte) bool {
	if r := decap.PrepareReflection(inner); r != decap.OK {
		p.t.counters.drop(r)
		p.lastReflectDrop = r
		return false
	}
	if !p.reflectRate.Allow(time.Now()) {
		p.t.counters.drop(decap.ReflectLimited)
		p.lastReflectDrop = decap.ReflectLimited
		return false
	}
	p.reflected.Add(1)
	return true
}

// Reflections a tunnel sends at most: a burst of reflectBurst, then one
// every reflectEvery. A peer probes once a keepalive period (gretun's
// shortest is 10 ms, Cisco's 1 s), so this never holds back a real peer,
// while a flood of forged probes cannot turn the tunnel into a reflector.
const (
	reflectEvery = 10 * time.Millisecond
	reflectBurst = 10
)
