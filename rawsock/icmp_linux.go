package rawsock

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/gretun/gretun/header"
	"golang.org/x/sys/unix"
)

type icmpSys struct {
	ipc *net.IPConn
}

func (s *icmpSys) open() error {
	pconn, err := net.ListenPacket(fmt.Sprintf("ip4:%d", header.ProtoICMP), "0.0.0.0")
	if err != nil {
		return fmt.Errorf("rawsock: open raw ICMP socket: %w", err)
	}
	ipc := pconn.(*net.IPConn)
	rc, err := ipc.SyscallConn()
	if err != nil {
		ipc.Close()
		return fmt.Errorf("rawsock: %w", err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		// ICMP_FILTER (raw(7)) is a mask of the types to drop.
		serr = unix.SetsockoptInt(int(fd), unix.SOL_RAW, unix.ICMP_FILTER, ^(1 << header.ICMPv4DstUnreachable))
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		ipc.Close()
		return fmt.Errorf("rawsock: set ICMP_FILTER: %w", err)
	}
	s.ipc = ipc
	return nil
}

func (s *icmpSys) readTooBig(buf []byte) (TooBig, error) {
	if s.ipc == nil {
		return TooBig{}, errNotOpen
	}
	for {
		// The net package strips the IPv4 header of raw IPv4 reads.
		n, from, err := s.ipc.ReadFromIP(buf)
		if err != nil {
			return TooBig{}, err
		}
		tb, ok := ParseTooBig(buf[:n])
		if !ok {
			continue
		}
		if a, ok := netip.AddrFromSlice(from.IP); ok {
			tb.From = a.Unmap()
		}
		return tb, nil
	}
}

func (s *icmpSys) close() error {
	if s.ipc == nil {
		return errNotOpen
	}
	return s.ipc.Close()
}
