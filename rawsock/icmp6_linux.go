package rawsock

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"

	"github.com/gretun/gretun/header"
)

type icmp6Sys struct {
	ipc *net.IPConn
}

func (s *icmp6Sys) open() error {
	ipc, _, err := listen("ip6:ipv6-icmp", "::", func(fd int) error {
		// ICMP6_FILTER (RFC 3542 section 3.2): a set bit blocks its type.
		var f unix.ICMPv6Filter
		for i := range f.Data {
			f.Data[i] = ^uint32(0)
		}
		f.Data[header.ICMPv6PacketTooBig>>5] &^= 1 << (header.ICMPv6PacketTooBig & 31)
		if err := unix.SetsockoptICMPv6Filter(fd, unix.IPPROTO_ICMPV6, unix.ICMPV6_FILTER, &f); err != nil {
			return fmt.Errorf("rawsock: set ICMP6_FILTER: %w", err)
		}
		return nil
	})
	s.ipc = ipc
	return err
}

func (s *icmp6Sys) readTooBig(buf []byte) (TooBig, error) {
	return readTooBig(s.ipc, buf, ParseTooBig6)
}

func (s *icmp6Sys) close() error {
	if s.ipc == nil {
		return errNotOpen
	}
	return s.ipc.Close()
}
