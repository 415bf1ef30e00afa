package tunnel

// The sending path: from an inner packet on the device to an outer packet
// on the underlay. A packet's walk through this file:
//
//  1. readDevice, the tunnel's reading goroutine, reads a batch of inner
//     packets from the device into buffers at innerOffset, which leaves
//     room in front for the outer header, and passes the batch on. Batches
//     circulate in a short pipeline, so the device keeps being drained
//     while the sender is in a system call. A point-to-point tunnel inside
//     UDP sends each batch itself instead (sendsInline).
//  2. transmit, the sending goroutine, takes every batch waiting and,
//     holding the peer's txMu, has encapBatch encapsulate them all.
//  3. encapBatch drops the tunnel's own outer packets coming back through
//     it (isOwnOuter, a dead loop), holds each packet against the path MTU
//     (mayFragment: one that must not be fragmented is answered with ICMP
//     Fragmentation Needed or Packet Too Big, built in place and queued
//     for the device), clamps the MSS of TCP SYNs, and fragments an IPv4
//     packet without DF before encapsulating it when the outer DF is set.
//  4. encapOne writes the outer header in front of the packet in place
//     (encap: no copy), and fragments the outer packet when it is larger
//     than the underlay MTU, since a raw socket will not.
//  5. sendOuter sends the batch to the peer's endpoint on its underlay in
//     as few system calls as it allows (socket.send), dropping and
//     counting what the underlay refuses (the Underlay error contract,
//     countSendError); an EMSGSIZE makes the tunnel re-read its underlay
//     MTU. `underlay packet` tunnels send on AF_PACKET instead, when the
//     next hop is known (sendPacketPath).
//  6. writeICMP gives the batch's ICMP errors to the device, and the
//     buffers go back to readDevice.
//
// Keepalives (keepalive.go) and reflected keepalive probes (receive.go)
// join the path at step 5.

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/encap"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/pmtu"
	"github.com/gretun/gretun/status"
)

// txBatch is what one TUN read brought: inner packets at innerOffset.
type txBatch struct {
	bufs  [][]byte
	sizes []int
	n     int
}

// txPipeline is how many batches may be between the reading and the
// sending goroutine. The reader keeps the TUN drained while the sender is in
// sendmmsg, and a sender that falls behind sends several reads' worth of
// packets in one call: small packets, which the TUN delivers one per read,
// are batched that way. Batches are borrowed from txPool while the tunnel
// sends, so an idle tunnel holds none.
const txPipeline = 8

// readDevice is the reading half of the sending path: it fills free
// batches from the TUN device and passes them on, or sends them itself
// (sendsInline), until the device closes.
func (t *Tunnel) readDevice(s *txSender, free chan *txBatch, full chan<- *txBatch) {
	defer t.wg.Done()
	defer close(full)
	bufSize := t.readSize()
	batch := readBatch(t.dev.BatchSize(), bufSize)
	batches := txBatches{free: free}
	ready := newReadiness(t.dev)
	errRun := 0
	for {
		// Batches are borrowed while packets come, and given back to the
		// pool once none has come for idleAfter (the read's deadline): an
		// idle tunnel waits holding none, a busy one keeps them between
		// packets.
		if batches.out == 0 && !ready.wait() {
			return
		}
		b := batches.get()
		if mtu := t.readSize(); mtu > bufSize || mtu < bufSize && readBatch(t.dev.BatchSize(), mtu) > batch {
			bufSize, batch = mtu, readBatch(t.dev.BatchSize(), mtu)
		}
		if b.bufs == nil || len(b.bufs) < batch || len(b.bufs[0]) < innerOffset+bufSize {
			b.bufs, b.sizes = makeBufs(batch, bufSize)
		}
		ready.expireAfter(idleAfter)
		n, err := t.dev.Read(b.bufs, b.sizes, innerOffset)
		if err != nil {
			if t.stopping.Load() || errors.Is(err, os.ErrClosed) {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				free <- b
				batches.release()
				continue
			}
			// A super-packet with more segments than the batch, or one larger
			// than the buffers (the MTU grew): count, recover, carry on.
			t.counters.add(txErrors, 1)
			if mtu, merr := t.dev.MTU(); merr == nil && mtu > bufSize {
				t.mtu.Store(int64(mtu))
			}
			if n == 0 {
				errRun++
				time.Sleep(time.Duration(min(errRun, 100)) * time.Millisecond)
				free <- b
				continue
			}
		}
		errRun = 0
		b.n = n
		if t.sendsInline() {
			s.mu.Lock()
			s.batches = append(s.batches[:0], b)
			t.sendBatches(s, free)
			s.mu.Unlock()
			continue
		}
		full <- b
	}
}

// transmit is the sending half: it encapsulates in place what the reader
// read, and sends it with as few sendmmsg calls as the batches allow.
func (t *Tunnel) transmit() {
	defer t.wg.Done()
	free := make(chan *txBatch, txPipeline)
	full := make(chan *txBatch, txPipeline)
	s := &txSender{path: packetPath{t: t}}
	t.wg.Add(1)
	go t.readDevice(s, free, full)
	defer s.path.close()
	for b := range full {
		s.mu.Lock()
		s.batches = append(s.batches[:0], b)
	drain:
		for len(s.batches) < txPipeline {
			select {
			case more, ok := <-full:
				if !ok {
					break drain
				}
				s.batches = append(s.batches, more)
			default:
				break drain
			}
		}
		t.sendBatches(s, free)
		s.mu.Unlock()
	}
}

// txSender is the sending path's working state, used by the sending
// goroutine or, for a tunnel that sends inline (sendsInline), by the
// reading goroutine itself; mu makes them take turns when a tunnel
// changes between the two.
type txSender struct {
	mu      sync.Mutex
	out     [][]byte
	frags   fragPool
	batches []*txBatch
	path    packetPath
}

// sendsInline reports whether the reading goroutine sends each batch
// itself instead of passing it to the sending goroutine: a point-to-point
// tunnel inside UDP, where one TUN read is one TSO super-packet and one
// UDP_SEGMENT sendmsg, so that the hand-off between two goroutines (a
// wake-up of each per super-packet) costs more than the overlap of reading
// and sending buys. The other tunnels keep the pipeline.
func (t *Tunnel) sendsInline() bool {
	c := t.cfg.Load()
	return t.nb == nil && c.UDP() && !usePacketPath(c)
}

// sendBatches encapsulates and sends s.batches, then gives them back to
// free; s.mu is held.
func (t *Tunnel) sendBatches(s *txSender, free chan<- *txBatch) {
	// `underlay packet` also records each outer packet's Ethernet
	// frame; the default (raw) path is as it always was.
	var frames *[][]byte
	if usePacketPath(t.cfg.Load()) {
		s.path.frames = s.path.frames[:0]
		frames = &s.path.frames
	} else if s.path.conn != nil {
		s.path.close() // switched back to `underlay raw`
	}
	// A point-to-point tunnel sends every packet to its one peer; a
	// multipoint one finds each packet's peer by its inner destination
	// and sends a batch per peer.
	if t.nb != nil {
		s.out = t.transmitNeighbours(s.batches, s.out, &s.frags)
	} else {
		s.out = t.transmitPeer(s.batches, s.out, &s.frags, frames, &s.path)
	}
	if len(t.icmpOut) > 0 {
		t.writeICMP()
	}
	s.frags.reset()
	for _, b := range s.batches {
		free <- b
	}
	// Keep no pointer into the batches once given back: they may go
	// back to txPool, which can free them only if nothing points there.
	clear(s.out)
	clear(s.batches)
}

// transmitPeer encapsulates and sends the batches to a point-to-point
// tunnel's peer, and returns out for reuse.
func (t *Tunnel) transmitPeer(batches []*txBatch, out [][]byte, frags *fragPool, frames *[][]byte, path *packetPath) [][]byte {
	p := t.peer
	p.txMu.Lock()
	out = out[:0]
	for _, b := range batches {
		if t.ethernet {
			out = t.encapFrames(p, b.bufs[:b.n], b.sizes[:b.n], out, frags, frames)
		} else {
			out = t.encapBatch(p, b.bufs[:b.n], b.sizes[:b.n], out, frags, frames)
		}
	}
	ep := p.ep
	p.txMu.Unlock()
	if len(out) > 0 {
		if frames != nil {
			t.sendPacketPath(ep, path, out, *frames)
			clear(*frames)
		} else {
			t.sendOuter(ep, out)
		}
	}
	return out
}

// transmitNeighbours encapsulates and sends the batches of a multipoint
// tunnel: each run of packets to one neighbour (found by inner
// destination) in one call. Packets to no neighbour are dropped and
// counted (tx_no_neighbour). It returns out for reuse.
func (t *Tunnel) transmitNeighbours(batches []*txBatch, out [][]byte, frags *fragPool) [][]byte {
	nt := t.nb.table.Load()
	inner := func(b *txBatch, i int) []byte { return b.bufs[i][innerOffset : innerOffset+b.sizes[i]] }
	for _, b := range batches {
		var next *peer
		if b.n > 0 {
			next = nt.peerFor(inner(b, 0))
		}
		for i := 0; i < b.n; {
			p := next
			j := i + 1
			for ; j < b.n; j++ {
				if next = nt.peerFor(inner(b, j)); next != p {
					break
				}
			}
			if p == nil {
				t.counters.add(txNoNeighbour, uint64(j-i))
				t.counters.add(txErrors, uint64(j-i))
				if cp := t.tap.Load(); cp != nil {
					for k := i; k < j; k++ {
						cp.record(true, inner(b, k), status.DropNoNeighbour)
					}
				}
				i = j
				continue
			}
			clear(out)
			p.txMu.Lock()
			out = t.encapBatch(p, b.bufs[i:j], b.sizes[i:j], out[:0], frags, nil)
			ep := p.ep
			p.txMu.Unlock()
			if len(out) > 0 {
				t.sendOuter(ep, out)
			}
			i = j
		}
	}
	return out
}

// encapBatch encapsulates the inner packets for peer p in place and
// appends the outer packets (or their fragments) to out; p.txMu is held.
// When frames is not nil it gets one entry per packet appended to out: the
// outer packet with the room for an Ethernet header in front of it, or nil
// for an outer fragment (its buffer has no such room).
func (t *Tunnel) encapBatch(p *peer, bufs [][]byte, sizes []int, out [][]byte, frags *fragPool, frames *[][]byte) [][]byte {
	c := &t.counters
	var sent sendTally
	now := time.Now()
	pathMTU := p.pmtu.Effective(now)
	mss := p.clampMSS()
	ignoreDF := t.cfg.Load().DF == config.DFIgnore
	alwaysDF := p.enc.Config().DF == encap.DFSet
	cp := t.tap.Load()
	for i := range bufs {
		buf := bufs[i][:innerOffset+sizes[i]]
		inner := buf[innerOffset:]
		if t.isOwnOuter(inner, p.ep.to.Addr()) {
			c.add(txDeadLoop, 1)
			sent.errs++
			if cp != nil {
				cp.record(true, inner, status.DropDeadLoop)
			}
			if !t.deadLoopLogged.Swap(true) {
				t.e.log.Warn("dead loop: the route to the remote goes through the tunnel itself; dropping its own packets", "tunnel", t.name, "remote", p.ep.to.Addr())
			}
			continue
		}
		over := len(inner) > pathMTU && !ignoreDF
		if over && !t.mayFragment(buf, inner, pathMTU, now) {
			sent.errs++
			if cp != nil {
				cp.record(true, inner, status.DropTooBig)
			}
			continue
		}
		if mss != 0 && pmtu.ClampMSS(inner, mssFor(mss, inner)) {
			c.add(txMSSClamped, 1)
		}
		var drop string // why the packet was dropped, "" when sent
		switch {
		case over && alwaysDF && header.IPVersion(inner) == 4:
			// An IPv4 packet without DF, and the outer DF set
			// (pmtudisc): fragment the inner packet, each fragment in
			// an outer packet that fits, as the kernel's own tunnel
			// does once the inner route has learnt the MTU.
			n, ok := frags.fragment(inner, pathMTU, innerOffset)
			if !ok {
				c.add(txTooBig, 1)
				drop = status.DropTooBig
				break
			}
			for _, f := range frags.last(n) {
				if out, drop = p.encapOne(f, false, out, frags, frames); drop != "" {
					break
				}
			}
			c.add(txFragmented, uint64(n))
		default:
			// The packet goes whole. If it is over the path MTU with the
			// outer DF set, it is an IPv6 packet of at most 1280 bytes,
			// which must still cross (RFC 4459 §3.2): its outer packet
			// goes without DF, to be fragmented.
			out, drop = p.encapOne(buf, over && alwaysDF, out, frags, frames)
		}
		cp.tx(inner, drop)
		sent.add(drop, sizes[i])
	}
	t.countSent(p, sent)
	return out
}

// sendTally is what one send batch sent (packets and bytes) and dropped.
type sendTally struct{ pkts, bytes, errs uint64 }

// add counts a packet of size bytes: sent, or dropped when drop says why.
func (s *sendTally) add(drop string, size int) {
	if drop != "" {
		s.errs++
		return
	}
	s.pkts++
	s.bytes += uint64(size)
}

// countSent adds one batch's sent packets and bytes, and the packets it
// dropped, to the tunnel's counters and, on a multipoint tunnel, to the
// neighbour's.
func (t *Tunnel) countSent(p *peer, s sendTally) {
	c := &t.counters
	c.add(txPackets, s.pkts)
	c.add(txBytes, s.bytes)
	c.add(txErrors, s.errs)
	if t.nb != nil {
		p.stats.txPackets.Add(s.pkts)
		p.stats.txBytes.Add(s.bytes)
	}
}

// encapFrames is encapBatch for the Ethernet frames of a gretap tunnel,
// which it carries opaque: no MSS clamp, and no ICMP error for a frame too
// big for the path, since a bridge sends none (the frame may come from
// another host) and the kernel's bridge drops oversize frames silently.
// A frame whose payload is over the path MTU goes only when the outer DF
// allows fragmenting it (nopmtudisc, ignore-df); else it is dropped and
// counted as too big.
func (t *Tunnel) encapFrames(p *peer, bufs [][]byte, sizes []int, out [][]byte, frags *fragPool, frames *[][]byte) [][]byte {
	c := &t.counters
	var sent sendTally
	pathMTU := p.pmtu.Effective(time.Now())
	df := p.enc.Config().DF == encap.DFSet
	cp := t.tap.Load()
	for i := range bufs {
		buf := bufs[i][:innerOffset+sizes[i]]
		frame := header.Ethernet(buf[innerOffset:])
		var drop string // why the frame was dropped, "" when sent
		switch {
		case t.isOwnOuter(framedIP(frame), p.ep.to.Addr()):
			c.add(txDeadLoop, 1)
			drop = status.DropDeadLoop
		case df && len(frame)-header.EthernetHeaderLen > pathMTU:
			c.add(txTooBig, 1)
			drop = status.DropTooBig
		default:
			out, drop = p.encapOne(buf, false, out, frags, frames)
		}
		cp.tx(frame, drop)
		sent.add(drop, sizes[i])
	}
	t.countSent(p, sent)
	return out
}

// framedIP is the IPv4 or IPv6 packet an Ethernet frame carries, nil for
// any other frame.
func framedIP(frame header.Ethernet) []byte {
	if frame.IsValid() {
		switch frame.EtherType() {
		case header.EtherTypeIPv4, header.EtherTypeIPv6:
			return frame.Payload()
		}
	}
	return nil
}

// readSize is the largest packet the device reads: its MTU, and for an
// Ethernet device the frame's header and up to two VLAN tags (802.1ad).
func (t *Tunnel) readSize() int {
	if t.ethernet {
		return t.MTU() + header.EthernetHeaderLen + 8
	}
	return t.MTU()
}

// encapOne encapsulates the inner packet at innerOffset in buf and appends
// the outer packet, or its fragments when it does not fit the underlay,
// to out (and frames, as encapBatch says). clearDF sends it without DF
// whatever the tunnel's policy. It counts what it drops, and returns the
// drop reason when it appended nothing, else "".
func (p *peer) encapOne(buf []byte, clearDF bool, out [][]byte, frags *fragPool, frames *[][]byte) ([][]byte, string) {
	c := &p.t.counters
	outer, err := p.enc.Encap(buf, innerOffset)
	if errors.Is(err, encap.ErrEncapLimit) {
		p.t.refuseEncapLimit(buf, time.Now())
		return out, status.DropEncapLimit
	}
	if err != nil {
		c.add(txBadInner, 1)
		return out, status.DropBadInner
	}
	if ip := header.IPv4(outer); clearDF && header.IPVersion(outer) == 4 && ip.DF() {
		ip.SetFlagsFrag(ip.FlagsFrag() &^ header.IPv4FlagDF)
		ip.UpdateChecksum()
	}
	if len(outer) <= p.underlayMTU || p.ep.sock.key.UDP() {
		// A UDP socket fragments what it may itself, and refuses the
		// rest with EMSGSIZE (DF set: IP_PMTUDISC_DO).
		out = append(out, outer)
		if frames != nil {
			// Encap returns a suffix of buf: the headroom in front of
			// it holds the Ethernet header.
			var f []byte
			if start := len(buf) - len(outer); start >= ethHeaderLen {
				f = buf[start-ethHeaderLen:]
			}
			*frames = append(*frames, f)
		}
		return out, ""
	}
	// A raw socket does not fragment: do it here when DF allows (RFC
	// 791), else drop it and count it. Over IPv6 only packets that may be
	// fragmented come here (clearDF: RFC 2473 section 7.1).
	var n int
	var ok bool
	switch {
	case header.IPVersion(outer) == 4:
		n, ok = frags.fragment(outer, p.underlayMTU, 0)
	case clearDF:
		n, ok = frags.fragment6(outer, p.underlayMTU, p.enc.FragmentID())
	}
	if !ok {
		c.add(txTooBig, 1)
		return out, status.DropTooBig
	}
	out = append(out, frags.last(n)...)
	c.add(txFragmented, uint64(n))
	if frames != nil {
		for range n {
			*frames = append(*frames, nil)
		}
	}
	return out, ""
}

// mayFragment decides about an inner packet larger than the tunnel's path
// MTU: one that may be fragmented goes on (encapBatch fragments it or its
// outer packet); one that may not is dropped and answered with ICMP Fragmentation Needed or
// Packet Too Big, built in place in front of it (RFC 1191, RFC 4443). The
// rate limit comes before any work on the answer.
func (t *Tunnel) mayFragment(buf, inner []byte, mtu int, now time.Time) bool {
	switch err := pmtu.Check(inner, mtu); {
	case errors.Is(err, pmtu.ErrMayFragment), errors.Is(err, pmtu.ErrFits):
		return true
	case err != nil:
		t.counters.add(txTooBig, 1)
		return false
	}
	t.counters.add(txTooBig, 1)
	if !t.icmpRate.Allow(now) {
		t.counters.add(txICMPLimited, 1)
		return false
	}
	hdr := pmtu.HeaderLen4
	if header.IPVersion(inner) == 6 {
		hdr = pmtu.HeaderLen6
	}
	start := innerOffset - hdr
	if n, err := pmtu.TooBig(buf[start:], inner, mtu, t.icmpSource(inner)); err == nil {
		t.counters.add(txICMP, 1)
		t.icmpOut = append(t.icmpOut, buf[start-t.headroom:start+n])
	}
	return false
}

// refuseEncapLimit counts an inner IPv6 packet at innerOffset in buf whose
// encapsulation limit is 0 and answers its source with an ICMPv6 Parameter
// Problem pointing at the limit, built in place in front of it, as RFC
// 2473 section 6.6 tells a tunnel entry point (Linux's ip6_tnl does the
// same). The rate limit comes first, as for Packet Too Big.
func (t *Tunnel) refuseEncapLimit(buf []byte, now time.Time) {
	t.counters.add(txEncapLimit, 1)
	if !t.icmpRate.Allow(now) {
		t.counters.add(txICMPLimited, 1)
		return
	}
	inner := buf[innerOffset:]
	_, at, _ := header.IPv6EncapLimit(inner)
	start := innerOffset - pmtu.HeaderLen6
	if n, err := pmtu.ParamProblem6(buf[start:], inner, at, t.icmpSource(inner)); err == nil {
		t.counters.add(txICMP, 1)
		t.icmpOut = append(t.icmpOut, buf[start-t.headroom:start+n])
	}
}

// icmpSource picks the source of an ICMP error about inner, a packet
// pmtu.Check found well-formed: its destination, for which the error
// speaks, as the kernel's does when it answers for a local address.
// Every address of this host would be wrong: Linux drops IPv4 arriving
// with one of its own addresses as source (a martian unless accept_local),
// a link-local source never reaches a sender behind this router, and a
// device may have no other IPv6 address. The destination's route leads
// into this tunnel, so even strict reverse-path filtering accepts the
// error, whether a sender on this host gets it or one behind it.
//
// An IPv6 packet to a multicast group may be answered too (RFC 4443
// §2.4(e.3)); a group is no source, so the device's own address stands in,
// from the cache the address watcher keeps (never looked up per packet).
func (t *Tunnel) icmpSource(inner []byte) netip.Addr {
	if header.IPVersion(inner) == 4 {
		return netip.AddrFrom4(header.IPv4(inner).Dst())
	}
	if dst := netip.AddrFrom16(header.IPv6(inner).Dst()); !dst.IsMulticast() {
		return dst
	}
	if a := t.addr6.Load(); a != nil {
		return *a
	}
	return netip.Addr{}
}

// writeICMP returns the batch's ICMP errors to the inner senders.
func (t *Tunnel) writeICMP() {
	if _, err := t.dev.Write(t.icmpOut, t.headroom); err != nil {
		t.counters.add(txErrors, 1)
	}
	for i := range t.icmpOut {
		t.icmpOut[i] = nil
	}
	t.icmpOut = t.icmpOut[:0]
}

// sendOuter sends outer packets and learns from EMSGSIZE that the underlay
// path shrank (a route or device MTU lowered under us).
func (t *Tunnel) sendOuter(ep endpoint, pkts [][]byte) {
	ep.sock.send(pkts, ep.to, ep.out, &t.counters, t.refreshUnderlay, t.tap.Load())
}

// isOwnOuter reports whether a packet read from the TUN is one of this
// tunnel's own outer packets to remote: the route to the remote leads
// into the tunnel.
func (t *Tunnel) isOwnOuter(inner []byte, remote netip.Addr) bool {
	c := t.cfg.Load()
	if c.Mode.IPv6() {
		if len(inner) < header.IPv6HeaderLen || header.IPVersion(inner) != 6 {
			return false
		}
		ip := header.IPv6(inner)
		next := ip.NextHeader()
		sends := c.SendsProto(next)
		if c.UDP() {
			sends = next == header.ProtoUDP
		}
		return (sends || next == header.IPv6DestOpts) && ip.Src() == c.Local.As16() && ip.Dst() == remote.As16()
	}
	if len(inner) < header.IPv4MinLen || header.IPVersion(inner) != 4 {
		return false
	}
	ip := header.IPv4(inner)
	if ip.Src() != c.Local.As4() || ip.Dst() != remote.As4() {
		return false
	}
	if c.UDP() {
		hl := ip.HeaderLen()
		return ip.Protocol() == header.ProtoUDP && len(inner) >= hl+header.UDPLen &&
			header.UDP(inner[hl:]).DstPort() == c.DstPort()
	}
	return ip.Protocol() == c.Proto()
}

// readBatch is how many buffers one TUN read needs: a TSO super-packet of
// up to 64 KiB split into segments that fit the MTU (at least 40 bytes of
// each are headers), capped by what the device reads at once. Sizing it to
// the MTU rather than always the device's 128 keeps idle tunnels small.
func readBatch(deviceBatch, mtu int) int {
	if mtu <= 40 {
		return deviceBatch
	}
	return min(deviceBatch, 65535/(mtu-40)+2)
}

// makeBufs carves n buffers for packets of up to mtu bytes at innerOffset
// out of one allocation: a large allocation comes straight from fresh
// pages, which cost no memory until a packet touches them.
func makeBufs(n, mtu int) ([][]byte, []int) {
	size := innerOffset + mtu
	slab := make([]byte, n*size)
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = slab[i*size : (i+1)*size : (i+1)*size]
	}
	return bufs, make([]int, n)
}

// fragPool lends buffers for fragments within one batch: outer fragments,
// and inner ones with headroom for their outer headers.
type fragPool struct {
	bufs  [][]byte
	views [][]byte // where Fragment writes: bufs after their headroom
	used  int
}

// fragment splits the IPv4 packet pkt into fragments of at most mtu bytes
// (encap.Fragment), each head bytes into a buffer from the pool; last(n)
// returns those buffers, headroom included. An mtu below IPv4's minimum
// of 68 is unusable and refused before any arithmetic with it. It reports
// false when pkt cannot be fragmented (DF set, malformed, mtu unusable).
func (f *fragPool) fragment(pkt []byte, mtu, head int) (int, bool) {
	if mtu < pmtu.MinMTU4 {
		return 0, false
	}
	// Each fragment carries at least mtu-60 (the longest header) bytes of
	// payload, rounded down to 8, and one buffer is spare; none is longer
	// than the packet.
	need := len(pkt)/((mtu-header.IPv4MaxLen)&^7) + 2
	return f.split(need, head, head+min(mtu, len(pkt)), func(views [][]byte) (int, error) {
		return encap.Fragment(pkt, mtu, views)
	})
}

// fragment6 splits the outer IPv6 packet pkt into fragments of at most mtu
// bytes with identification id (encap.Fragment6), as fragment does.
func (f *fragPool) fragment6(pkt []byte, mtu int, id uint32) (int, bool) {
	if mtu < header.IPv6MinMTU {
		return 0, false
	}
	need := len(pkt)/((mtu-header.IPv6HeaderLen-header.IPv6FragmentLen)&^7) + 2
	return f.split(need, 0, mtu, func(views [][]byte) (int, error) {
		return encap.Fragment6(pkt, mtu, id, views)
	})
}

// split lends need buffers of size bytes, has cut write fragments into
// them after head bytes of headroom, and keeps those it wrote.
func (f *fragPool) split(need, head, size int, cut func(views [][]byte) (int, error)) (int, bool) {
	for len(f.bufs) < f.used+need {
		f.bufs = append(f.bufs, nil)
	}
	f.views = f.views[:0]
	for i := f.used; i < f.used+need; i++ {
		if cap(f.bufs[i]) < size {
			f.bufs[i] = make([]byte, 0, size)
		}
		f.views = append(f.views, f.bufs[i][head:size])
	}
	n, err := cut(f.views)
	if err != nil {
		return 0, false
	}
	for i, v := range f.views[:n] {
		f.bufs[f.used+i] = f.bufs[f.used+i][:head+len(v)]
	}
	f.used += n
	return n, true
}

func (f *fragPool) last(n int) [][]byte { return f.bufs[f.used-n : f.used] }
func (f *fragPool) reset()              { f.used = 0 }

// send writes packets to the underlay, dropping and counting those the
// kernel refuses (see rawsock's error contract) on c, and calls tooBig,
// when not nil, after an EMSGSIZE. The capture cp, when not nil, gets each
// packet as sent or, with its reason, as refused.
func (s *socket) send(pkts [][]byte, to netip.AddrPort, out Egress, c *counters, tooBig func(), cp *Capture) {
	for len(pkts) > 0 {
		n, err := s.write(pkts, to, out)
		if err == nil {
			cp.sent(pkts)
			return
		}
		cp.sent(pkts[:n])
		if errors.Is(err, net.ErrClosed) {
			c.add(txErrors, uint64(len(pkts)-n))
			cp.refused(true, pkts[n:], 0, status.DropTxOther)
			return
		}
		cp.refused(true, pkts[n:n+1], 0, countSendError(err, c))
		if tooBig != nil && errors.Is(err, syscall.EMSGSIZE) {
			tooBig()
		}
		pkts = pkts[n+1:]
	}
}

// innerOffset is where the device is read: room for the largest outer
// header, and for an ICMPv6 Packet Too Big built in front of the packet it
// quotes with the device's headroom before it.
const innerOffset = max(encap.HeadroomMax, maxHeadroom+pmtu.HeaderLen6)

// countSendError counts a packet the kernel refused to send, and returns
// the drop reason the capture names it by.
func countSendError(err error, c *counters) string {
	c.add(txErrors, 1)
	switch {
	case errors.Is(err, syscall.ENOBUFS), errors.Is(err, syscall.ENOMEM), errors.Is(err, syscall.EAGAIN):
		c.add(txNoBufs, 1)
		return status.DropNoBufs
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ENETDOWN), errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ENXIO):
		c.add(txNoRoute, 1)
		return status.DropNoRoute
	case errors.Is(err, syscall.EMSGSIZE):
		c.add(txTooBig, 1)
		return status.DropTooBig
	}
	return status.DropTxOther
}

// sendPacketPath sends a batch's outer packets: those with a frame on the
// packet socket, the others (fragments) on the raw socket, all of them on
// the raw socket while the path is not ready. frames[i] is out[i] with
// room for the Ethernet header in front.
func (t *Tunnel) sendPacketPath(ep endpoint, p *packetPath, out, frames [][]byte) {
	if !p.ready(ep.to.Addr(), ep.out.Dev, t.e.env.now()) {
		t.sendOuter(ep, out)
		return
	}
	i := 0
	if p.kick && len(out) > 0 {
		// One packet through the kernel's own path moves a STALE
		// neighbour entry to DELAY, so the kernel checks that the MAC
		// address still answers; the next resolution sees the outcome.
		p.kick = false
		t.sendOuter(ep, out[:1])
		i = 1
	}
	for i < len(out) {
		j := i
		for j < len(out) && frames[j] == nil {
			j++
		}
		if j > i {
			t.sendOuter(ep, out[i:j])
			i = j
			continue
		}
		for j < len(out) && frames[j] != nil {
			j++
		}
		n, err := p.conn.WriteBatch(frames[i:j], ep.to)
		t.counters.add(txPacketSocket, uint64(n))
		cp := t.tap.Load()
		if err == nil {
			cp.sent(out[i:j])
			i = j
			continue
		}
		// Frame i+n failed: count it as the raw socket would, and send
		// the rest of the batch on the raw socket until the next hop is
		// resolved again.
		cp.sent(out[i : i+n])
		cp.refused(true, out[i+n:i+n+1], 0, countSendError(err, &t.counters))
		p.invalidate()
		if errors.Is(err, syscall.EMSGSIZE) {
			t.refreshUnderlay()
		}
		if rest := i + n + 1; rest < len(out) {
			t.sendOuter(ep, out[rest:])
		}
		return
	}
}
