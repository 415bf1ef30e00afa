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
	ipc, _, err := listen(fmt.Sprintf("ip4:%d", header.ProtoICMP), "0.0.0.0", func(fd int) error {
		// ICMP_FILTER (raw(7)) is a mask of the types to drop.
		if err := unix.SetsockoptInt(fd, unix.SOL_RAW, unix.ICMP_FILTER, ^(1 << header.ICMPv4DstUnreachable)); err != nil {
			return fmt.Errorf("rawsock: set ICMP_FILTER: %w", err)
		}
		return nil
	})
	s.ipc = ipc
	return err
}

func (s *icmpSys) readTooBig(buf []byte) (TooBig, error) {
	// The net package strips the IPv4 header of raw IPv4 reads.
	return readTooBig(s.ipc, buf, ParseTooBig)
}

// readTooBig reads ipc until a message parse accepts, and says which
// router sent it; the IPv4 and IPv6 sockets differ only in parse.
func readTooBig(ipc *net.IPConn, buf []byte, parse func([]byte) (TooBig, bool)) (TooBig, error) {
	if ipc == nil {
		return TooBig{}, errNotOpen
	}
	for {
		n, from, err := ipc.ReadFromIP(buf)
		if err != nil {
			return TooBig{}, err
		}
		tb, ok := parse(buf[:n])
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
