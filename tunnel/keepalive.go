package tunnel

import (
	"encoding/binary"
	"time"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/keepalive"
	"github.com/gretun/gretun/status"
)

// KeepaliveStatus is what `tunnel show` prints about keepalives.
type KeepaliveStatus = status.Keepalive

func newKeepaliveStatus(s keepalive.Snapshot) *KeepaliveStatus {
	return &KeepaliveStatus{
		State: s.State.String(), Since: s.Since, LastReplyAge: s.LastReplyAge, LastRTT: s.LastRTT,
		Sent: s.Sent, Received: s.Received, Rejected: s.Rejected,
		RejectedForged: s.RejectedForged, RejectedStale: s.RejectedStale,
		Unanswered: s.Unanswered, Summary: s.String(),
	}
}

// newKeepalive returns the keepalive machine for configuration c, nil
// when keepalives are off.
func newKeepalive(c *config.Tunnel) (*keepalive.Machine, error) {
	if c.KeepalivePeriod == 0 {
		return nil, nil
	}
	return keepalive.New(keepalive.Config{Period: c.KeepalivePeriod, Retries: c.KeepaliveRetries}, time.Now())
}

// setKeepalive installs m (from newKeepalive) as the peer's keepalive
// machine, nil to stop keepalives, which brings the line protocol up. A
// new period or retry count keeps the line protocol state, flap damping
// and counters (Machine.Continue), as a Cisco router's `keepalive` command
// does: a tunnel whose peer is dead must not come up, nor a flapping one
// be forgiven, because a number was edited.
func (p *peer) setKeepalive(m *keepalive.Machine) {
	if m == nil {
		if p.ka.Swap(nil) != nil {
			p.syncCarrier("keepalives turned off")
		}
		p.kick()
		return
	}
	if old := p.ka.Load(); old != nil {
		m.Continue(old, time.Now())
	}
	if p.ka.Swap(m) != nil {
		// A reply the old machine took after Continue may have moved
		// the carrier: set it from the machine now in charge.
		p.syncCarrier("keepalives reconfigured")
	}
	p.kick()
	p.ensureKeepaliveLoop()
}

func (p *peer) kick() {
	select {
	case p.kaKick <- struct{}{}:
	default:
	}
}

// ensureKeepaliveLoop starts the keepalive goroutine when keepalives are
// on and it is not running: peers without keepalives have none.
func (p *peer) ensureKeepaliveLoop() {
	p.kaMu.Lock()
	defer p.kaMu.Unlock()
	if p.kaRunning || !p.started || p.ka.Load() == nil {
		return
	}
	p.kaRunning = true
	p.t.wg.Add(1)
	go p.keepaliveLoop()
}

// keepaliveLoop sends a keepalive whenever the machine says one is due,
// until the tunnel stops or keepalives are turned off.
func (p *peer) keepaliveLoop() {
	defer p.t.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	buf := make([]byte, innerOffset+keepaliveInnerMax)
	for {
		m := p.ka.Load()
		if m == nil {
			p.kaMu.Lock()
			if p.ka.Load() == nil {
				p.kaRunning = false
				p.kaMu.Unlock()
				return
			}
			p.kaMu.Unlock()
			continue
		}
		timer.Reset(time.Until(m.NextDeadline()))
		due := timer.C
		select {
		case <-p.t.quit:
			return
		case <-p.kaKick:
		case now := <-due:
			m := p.ka.Load()
			if m == nil || !m.Tick(now) {
				continue
			}
			p.sendKeepalive(m, buf, now)
			p.logEvent(m.Sent(now))
		}
	}
}

// keepaliveInnerMax is the inner keepalive with the longest GRE header,
// inside UDP.
const keepaliveInnerMax = max(keepalive.InnerLen, keepalive.InnerLen6) + 8 + header.UDPLen

// sendKeepalive builds a Cisco keepalive (an inner IPv4 packet, IPv6 on
// ip6gre, from the remote back to us carrying GRE protocol type 0 and our
// authenticated payload; inside UDP with encap fou), encapsulates it like any packet and sends it to the remote,
// which needs only to decapsulate and route it back.
func (p *peer) sendKeepalive(m *keepalive.Machine, buf []byte, now time.Time) {
	c := p.t.cfg.Load()
	inner := buf[innerOffset:]
	n := m.BuildInner(inner, c.Local, c.Remote, now)
	if n == 0 {
		return
	}
	n = withInputOptions(inner, n, c)
	if c.UDP() {
		n = insideUDP(inner, n, c)
	}
	p.txMu.Lock()
	outer, err := p.enc.EncapIP(buf[:innerOffset+n], innerOffset)
	ep := p.ep
	p.txMu.Unlock()
	if err == nil {
		p.t.sendOuter(ep, [][]byte{outer})
	}
}

// withInputOptions gives the inner GRE header of a keepalive our own input
// key and checksum, so that the returned packet passes our receive policy
// (the far end sends it back unchanged). It returns the new length.
func withInputOptions(inner []byte, n int, c *config.Tunnel) int {
	if !c.HasIKey && !c.ICsum {
		return n
	}
	greOff := header.IPv4MinLen
	if header.IPVersion(inner) == 6 {
		greOff = header.IPv6HeaderLen
	}
	flags := header.GREFlagsFor(c.ICsum, c.HasIKey, false)
	extra := header.GRELen(flags) - header.GREMinLen
	payload := greOff + header.GREMinLen
	copy(inner[payload+extra:], inner[payload:n])
	n += extra
	g := header.GRE(inner[greOff:n])
	binary.BigEndian.PutUint16(g[header.GREFlags:], flags)
	if c.HasIKey {
		binary.BigEndian.PutUint32(g[g.KeyOffset():], c.IKey)
	}
	if c.ICsum {
		binary.BigEndian.PutUint32(g[4:], 0)
		binary.BigEndian.PutUint16(g[4:], header.Checksum(g))
	}
	if greOff == header.IPv6HeaderLen {
		header.IPv6(inner).SetPayloadLen(n - greOff)
		return n
	}
	ip := header.IPv4(inner[:n])
	ip.SetTotalLen(n)
	ip.UpdateChecksum()
	return n
}

// insideUDP moves a keepalive's inner GRE header into UDP, from the
// remote's port to the one we receive on, so that the far end of a
// GRE-in-UDP tunnel, forwarding the inner packet, returns it to our UDP
// socket (a raw GRE packet would not reach it). Over IPv4 the UDP
// checksum is 0 (none); over IPv6 it is computed, as RFC 8200 wants of a
// packet the far end forwards as its own (a zero one passes only sockets
// that allow it, RFC 6935). It returns the new length.
func insideUDP(inner []byte, n int, c *config.Tunnel) int {
	off := header.IPv4MinLen
	v6 := header.IPVersion(inner) == 6
	if v6 {
		off = header.IPv6HeaderLen
	}
	copy(inner[off+header.UDPLen:], inner[off:n])
	n += header.UDPLen
	u := header.UDP(inner[off:n])
	u.Encode(&header.UDPFields{SrcPort: c.DstPort(), DstPort: c.LocalPort(), Length: uint16(n - off)})
	if v6 {
		ip := header.IPv6(inner[:n])
		ip[header.IPv6NextHeader] = header.ProtoUDP
		ip.SetPayloadLen(n - off)
		u.SetChecksum(u.ComputeChecksum(header.PseudoSum(ip.Addrs(), header.ProtoUDP, n-off)))
		return n
	}
	ip := header.IPv4(inner[:n])
	ip[header.IPv4Protocol] = header.ProtoUDP
	ip.SetTotalLen(n)
	ip.UpdateChecksum()
	return n
}

// logEvent logs a state change and sets the line protocol to match.
func (p *peer) logEvent(ev keepalive.Event) {
	if !ev.Changed() {
		return
	}
	p.t.e.log.Info("keepalive: line protocol "+ev.To.String(), "tunnel", p.t.name, "change", ev.String())
	p.syncCarrier(ev.Reason.String())
}

// syncCarrier sets the carrier from the keepalive machine in charge now:
// on when its line protocol is up or keepalives are off. It reads the
// state under carrierMu rather than taking it from the event that led
// here, because two changes can reach here in the other order than they
// happened: the keepalive goroutine's Sent takes the line down, the
// reply to the keepalive it has just sent takes it up again on the
// receiving goroutine, and the down's carrier-off, set last, would leave
// the device without carrier under a line protocol that stays up. Whoever
// sets the carrier last now sets it from the latest state.
func (p *peer) syncCarrier(why string) {
	p.carrierMu.Lock()
	defer p.carrierMu.Unlock()
	m := p.ka.Load()
	p.t.setCarrier(m == nil || m.State() == keepalive.Up, why)
}

// setCarrier turns the device's carrier on or off: off, the kernel skips
// the routes through it (ignore_routes_with_linkdown), so a floating static
// route takes over; on, the user's routes are used again.
func (t *Tunnel) setCarrier(up bool, why string) {
	if err := t.dev.SetCarrier(up); err != nil {
		t.e.log.Warn("cannot set carrier", "tunnel", t.name, "up", up, "reason", why, "err", err)
	}
}
