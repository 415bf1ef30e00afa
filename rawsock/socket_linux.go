package rawsock

import (
	"fmt"
	"net"
	"sync"
	"syscall"
)

// rawSocket is what the IPv4 and IPv6 raw sockets share: the socket, the
// lock their receive path holds, and for GRE the side channel for
// checksums a sender on this host left to offload (offload_linux.go),
// which the receive path uses under that lock.
type rawSocket struct {
	ipc     *net.IPConn
	rc      syscall.RawConn
	network string // "ip4" or "ip6", for errors

	rmu  sync.Mutex
	rreq int                   // slots for the next recvmmsg
	rn   int                   // its result, set inside rc.Read
	rerr error                 // and its error
	rfn  func(fd uintptr) bool // the socket's recvmmsg, made once so reads do not allocate

	ring       *offloadRing
	offloadErr error
}

// openRing opens GRE's checksum side channel. Without one the socket
// still works; such checksums count as errors, and OffloadErr says why.
func (s *rawSocket) openRing(ipv6 bool) {
	var err error
	if s.ring, err = openOffloadRing(ipv6); err != nil {
		s.offloadErr = fmt.Errorf("rawsock: no side channel for offloaded GRE checksums: %w", err)
	}
}

// recv runs one recvmmsg into the first n slots and returns how many it
// filled; the side channel then forgets packets older than those.
func (s *rawSocket) recv(n int) (int, error) {
	s.rreq = n
	err := s.rc.Read(s.rfn)
	if err == nil {
		err = s.rerr
	}
	if err != nil {
		return 0, s.opError("read", err)
	}
	if s.ring != nil {
		s.ring.trim()
	}
	return s.rn, nil
}

func (s *rawSocket) opError(op string, err error) error { return opError(s.ipc, s.network, op, err) }

func (s *rawSocket) completeChecksum(pkt []byte) bool {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	return s.ring != nil && s.ring.complete(pkt)
}

// close closes the socket, which releases a blocked read and rmu
// with it, then the side channel.
func (s *rawSocket) close() error {
	if s.ipc == nil {
		return errNotOpen
	}
	err := s.ipc.Close()
	s.rmu.Lock()
	if s.ring != nil {
		s.ring.close()
		s.ring = nil
	}
	s.rmu.Unlock()
	return err
}
