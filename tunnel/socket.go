package tunnel

import (
	"errors"
	"os"

	"github.com/gretun/gretun/tundev"
)

// tunHeader is the room the TUN device needs in front of each packet it
// reads or writes: its virtio-net header.
const tunHeader = tundev.VirtioHdrLen

// socket is one raw socket, shared by every tunnel of its protocol, and the
// goroutine that receives on it.
type socket struct {
	e     *Engine
	proto uint8
	conn  Underlay
	done  chan struct{}
	// offload, when the underlay has one, completes checksums a sender on
	// this host left unfilled (rawsock.Conn.CompleteChecksum).
	offload checksumCompleter
}

// checksumCompleter is an underlay that can tell, for a received packet
// whose GRE checksum failed, whether a sender on this host left it to
// offload, and then fill it in.
type checksumCompleter interface {
	CompleteChecksum(pkt []byte) bool
	OffloadErr() error
}

// socket returns the raw socket for proto, opening it on first use; e.mu is held.
func (e *Engine) socket(proto uint8) (*socket, error) {
	if s, ok := e.socks[proto]; ok {
		return s, nil
	}
	conn, err := e.env.OpenUnderlay(int(proto))
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, errors.New("opening a raw IP socket needs CAP_NET_RAW (run as root)")
		}
		return nil, err
	}
	s := &socket{e: e, proto: proto, conn: conn, done: make(chan struct{})}
	if c, ok := conn.(checksumCompleter); ok {
		if err := c.OffloadErr(); err != nil {
			e.log.Warn("GRE checksums a VM or container on this host leaves to offload will count as checksum errors", "err", err)
		} else {
			s.offload = c
		}
	}
	e.socks[proto] = s
	go s.receive()
	return s, nil
}

func (s *socket) close() {
	s.conn.Close()
	<-s.done
}
