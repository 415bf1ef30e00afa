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
	ipc *net.IPConn
	rc  syscall.RawConn
	rmu sync.Mutex

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
