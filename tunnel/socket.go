package tunnel

import (
	"errors"
	"net/netip"
	"os"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/decap"
	"github.com/gretun/gretun/tundev"
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
	return UnderlayKey{Proto: c.Proto(), IPv6: c.Mode.IPv6()}
}

// socket returns the underlay for k, opening it on first use; e.mu is held.
func (e *Engine) socket(k UnderlayKey) (*socket, error) {
	if s, ok := e.socks[k]; ok {
		return s, nil
	}
	conn, err := e.env.OpenUnderlay(k)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, errors.New("opening a raw IP socket needs CAP_NET_RAW (run as root)")
		}
		return nil, err
	}
	s := &socket{e: e, key: k, conn: conn, done: make(chan struct{}), parse: decap.Parse}
	if k.IPv6 {
		s.parse = decap.Parse6
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

// endpoint is where a tunnel's outer packets go: its underlay, and the
// remote's endpoint on it.
type endpoint struct {
	sock *socket
	to   netip.AddrPort
}

// overhead is what tunnel c's outer packets add to an inner packet on this
// underlay: c's encapsulation and the underlay's own header.
func (s *socket) overhead(c *config.Tunnel) int { return c.Overhead() + s.conn.HeaderLen() }

func endpointOf(c *config.Tunnel, s *socket) endpoint {
	return endpoint{sock: s, to: netip.AddrPortFrom(remoteOn(c), 0)}
}

// remoteOn is the remote with, for a link-local tunnel, its device as the
// zone: what the underlay sends to and the route MTU is read for.
func remoteOn(c *config.Tunnel) netip.Addr {
	if c.Dev != "" {
		return c.Remote.WithZone(c.Dev)
	}
	return c.Remote
}

func (s *socket) close() {
	s.conn.Close()
	<-s.done
}
