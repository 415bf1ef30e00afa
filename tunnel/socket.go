package tunnel

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/decap"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/pmtu"
	"github.com/gretun/gretun/tundev"
	"github.com/gretun/gretun/udpsock"
)

// maxHeadroom is the most room a device may need in front of each packet
// it reads or writes (Device.Headroom), which the engine's buffers leave:
// a TUN's virtio-net header.
const maxHeadroom = tundev.VirtioHdrLen

// socket is one underlay, shared by every tunnel of its key, and the
// goroutine that receives on it.
type socket struct {
	e    *Engine
	key  UnderlayKey
	conn Underlay
	done chan struct{}
	// offload, when the underlay has one, completes checksums a sender on
	// this host left unfilled (rawsock.Conn.CompleteChecksum).
	offload checksumCompleter
	// parse validates the outer packets the underlay delivers:
	// decap.Parse for IPv4, decap.Parse6 for IPv6.
	parse func(pkt []byte, p *decap.Packet) decap.Reason
	// The receive fast path's (rxgso.go), for the receiving goroutine:
	// wholeGRO's packet, and the one-packet batch of a device write.
	wp  decap.Packet
	one [1][]byte
}

// checksumCompleter is an underlay that can tell, for a received packet
// whose GRE checksum failed, whether a sender on this host left it to
// offload, and then fill it in.
type checksumCompleter interface {
	CompleteChecksum(pkt []byte) bool
	OffloadErr() error
}

// underlayOf is the key of the underlay tunnel c sends and receives on.
func underlayOf(c *config.Tunnel) UnderlayKey {
	if c.UDP() {
		return UnderlayKey{Proto: c.Proto(), Local: c.Local, Port: c.LocalPort()}
	}
	return UnderlayKey{Proto: c.Proto(), IPv6: c.Mode.IPv6()}
}

// socket returns the underlay for k, opening it on first use; e.mu is held.
func (e *Engine) socket(k UnderlayKey) (*socket, error) {
	if s, ok := e.socks[k]; ok {
		return s, nil
	}
	conn, err := e.env.OpenUnderlay(k)
	switch {
	case err == nil:
	case k.UDP() && errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("UDP port %d on %s is already in use (another program, another tunnel's protocol, or an `ip fou` port)", k.Port, k.Local)
	case k.UDP() && errors.Is(err, os.ErrPermission):
		return nil, fmt.Errorf("binding UDP port %d, below 1024, needs CAP_NET_BIND_SERVICE", k.Port)
	case errors.Is(err, os.ErrPermission):
		return nil, errors.New("opening a raw IP socket needs CAP_NET_RAW (run as root, or use encap fou, which needs none)")
	default:
		return nil, err
	}
	s := &socket{e: e, key: k, conn: conn, done: make(chan struct{}), parse: decap.Parse}
	if k.IPv6 {
		s.parse = decap.Parse6
	}
	if k.UDP() {
		proto := k.Proto
		s.parse = func(pkt []byte, p *decap.Packet) decap.Reason { return decap.ParseUDP(pkt, proto, p) }
	}
	if r, ok := conn.(errorReporter); ok {
		r.OnError(func(er udpsock.Error) { e.underlayError(k, &er) })
	}
	if c, ok := conn.(checksumCompleter); ok {
		if err := c.OffloadErr(); err != nil {
			e.log.Warn("GRE checksums a VM or container on this host leaves to offload will count as checksum errors", "err", err)
		} else {
			s.offload = c
		}
	}
	e.socks[k] = s
	go s.receive()
	return s, nil
}

// errorReporter is an underlay that hears of ICMP errors about the packets
// it sent (a UDP socket with IP_RECVERR: udpsock.Conn.OnError), from the
// goroutines that read it.
type errorReporter interface {
	OnError(fn func(udpsock.Error))
}

// underlayError gives an error report about a packet sent on underlay k
// to the tunnel that sent it: its local address and port (k), remote
// address and port, and for GRE the flags and output key it sends, found
// as tunnelsQuoted finds the tunnel of a raw socket's ICMP error.
// Fragmentation Needed lowers its path MTU; Port Unreachable (nobody
// listens there) is counted.
func (e *Engine) underlayError(k UnderlayKey, er *udpsock.Error) {
	if er.Kind != udpsock.TooBig && er.Kind != udpsock.Unreachable {
		return
	}
	g := header.GRE(er.Payload)
	dk := demuxKey{proto: k.Proto, port: k.Port, src: er.To.Addr(), dst: k.Local}
	if k.Proto == header.ProtoGRE {
		if len(g) < header.GREMinLen || g.Flags()&header.GREFlagKey != 0 && len(g) < g.KeyOffset()+4 {
			return // cannot name the tunnel
		}
		if g.Flags()&header.GREFlagKey != 0 {
			dk.key, dk.hasKey = g.Key(), true
		}
	}
	// sentBy is the peer of t that sent the packet: a point-to-point
	// tunnel's to its remote, a multipoint tunnel's neighbour there.
	sentBy := func(t *Tunnel) *peer {
		c := t.cfg.Load()
		if underlayOf(c) != k || c.DstPort() != er.To.Port() || !c.Multipoint() && c.Remote != er.To.Addr() {
			return nil
		}
		if c.Mode.GRE() && (g.Flags() != header.GREFlagsFor(c.OCsum, c.HasOKey, c.OSeq) || c.HasOKey && g.Key() != c.OKey) {
			return nil
		}
		return t.peerTo(er.To.Addr())
	}
	apply := func(t *Tunnel) {
		p := sentBy(t)
		switch {
		case p == nil:
		case er.Kind == udpsock.Unreachable:
			t.counters.add(txUnreachable, 1)
		case er.MTU >= pmtu.MinMTU4: // no plateau guessing: the kernel says the MTU
			p.learnPathMTU(er.MTU, er.MTU+1)
		}
	}
	found := e.lookup(dk)
	if found != nil {
		apply(found)
	}
	if e.asymmetric.Load() == 0 {
		return
	}
	e.demux.each(func(t *Tunnel) {
		if t != found {
			apply(t)
		}
	})
}

// endpoint is where a tunnel's outer packets go: its underlay, the
// remote's endpoint on it, and how they leave beyond the routes' choice
// (`dev`, `fwmark`).
type endpoint struct {
	sock *socket
	to   netip.AddrPort
	out  Egress
}

// overhead is what tunnel c's outer packets add to an inner packet on this
// underlay: c's encapsulation and the underlay's own header.
func (s *socket) overhead(c *config.Tunnel) int {
	n := c.Overhead() + s.conn.HeaderLen()
	if s.key.UDP() && c.Mode.IPv6() && c.NeedsNetRaw() && c.NoEncapCsum {
		// Linux refuses a plain UDP datagram with IPV6_DSTOPTS (the
		// encapsulation limit) within 8 bytes of the path MTU; udpsock
		// sends them as GSO segments, which it sizes right, but a zero
		// UDP checksum rules GSO out: leave the 8 bytes then. (A socket
		// that turned GSO off at an EIO learns the 8 bytes from the
		// refusal, as path MTU.)
		n += header.IPv6ExtMinLen
	}
	return n
}

func endpointOf(c *config.Tunnel, s *socket) endpoint { return endpointTo(c, s, c.Remote) }

// endpointTo is where tunnel c's packets to the outer address a go on s
// (its remote, or a multipoint tunnel's neighbour).
func endpointTo(c *config.Tunnel, s *socket, a netip.Addr) endpoint {
	return endpoint{sock: s, to: netip.AddrPortFrom(a, c.DstPort()), out: egressOf(c)}
}

// egressOf is how tunnel c's packets leave beyond the routes' choice.
func egressOf(c *config.Tunnel) Egress { return Egress{Dev: c.Dev, Mark: c.FwMark} }

// write sends pkts to the endpoint to on the underlay, as out asks.
func (s *socket) write(pkts [][]byte, to netip.AddrPort, out Egress) (int, error) {
	if out == (Egress{}) {
		return s.conn.WriteBatch(pkts, to)
	}
	w, ok := s.conn.(EgressWriter)
	if !ok {
		return 0, errNoEgress
	}
	return w.WriteBatchEgress(pkts, to, out)
}

func (s *socket) close() {
	s.conn.Close()
	<-s.done
}
