package rawsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// listen opens a raw IP socket as net.ListenPacket names it ("ip4:47",
// "ip6:ipv6-icmp") and runs setup on its descriptor before anything reads
// from it; on error nothing is left open. The IPv4 and IPv6 data sockets
// and the ICMP readers all open this way.
func listen(network, addr string, setup func(fd int) error) (*net.IPConn, syscall.RawConn, error) {
	pconn, err := net.ListenPacket(network, addr)
	if err != nil {
		return nil, nil, fmt.Errorf("rawsock: open raw socket %s: %w", network, err)
	}
	ipc := pconn.(*net.IPConn)
	rc, err := ipc.SyscallConn()
	if err != nil {
		ipc.Close()
		return nil, nil, fmt.Errorf("rawsock: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = setup(int(fd)) }); err != nil {
		serr = fmt.Errorf("rawsock: %w", err)
	}
	if serr != nil {
		ipc.Close()
		return nil, nil, serr
	}
	return ipc, rc, nil
}

// mmsg is what rc.Read or rc.Write runs: one recvmmsg or sendmmsg (trap)
// over the n message headers at hdrs, its count in *got and its error in
// *err, reporting "not ready" on EAGAIN so that the goroutine parks in the
// netpoller. It does not allocate.
func mmsg(trap, fd uintptr, hdrs *unix.Mmsghdr, n int, got *int, err *error) bool {
	for {
		r, _, e := unix.Syscall6(trap, fd, uintptr(unsafe.Pointer(hdrs)), uintptr(n), 0, 0, 0)
		switch e {
		case 0:
			*got, *err = int(r), nil
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			name := "recvmmsg"
			if trap == unix.SYS_SENDMMSG {
				name = "sendmmsg"
			}
			*got, *err = 0, os.NewSyscallError(name, e)
			return true
		}
	}
}

// opError gives every error of a read or write one shape, as the net
// package and mdlayher/packet do: a *net.OpError naming the operation and
// the socket's local address, around an *os.SyscallError or one of this
// package's sentinels. errors.Is reaches the errno or the sentinel. An
// error x/net wrapped already is unwrapped first, so it is not wrapped
// twice.
func opError(ipc *net.IPConn, network, op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: network, Addr: ipc.LocalAddr(), Err: err}
}

// outCache keeps the control messages of the last device and mark a
// socket's batch was sent with, made once for each.
type outCache struct {
	b       []byte
	ifindex int
	mark    uint32
}

// get returns the control messages for ifindex and mark (outControl), nil
// when neither is asked for.
func (c *outCache) get(v6 bool, ifindex int, mark uint32) []byte {
	if ifindex == 0 && mark == 0 {
		return nil
	}
	if c.b == nil || c.ifindex != ifindex || c.mark != mark {
		c.b, c.ifindex, c.mark = outControl(v6, ifindex, mark), ifindex, mark
	}
	return c.b
}

// outControl is the control messages that send a packet out of the
// device with index ifindex (IP_PKTINFO, IPV6_PKTINFO without a source,
// so that IPv6 too keeps the packet to the device: RT6_LOOKUP_F_IFACE;
// none for 0) and with firewall mark mark (SO_MARK, which needs
// CAP_NET_ADMIN or CAP_NET_RAW; none for 0). The kernel routes a packet
// with a device named so as if the routes out of it were the only ones,
// and one with a mark by the rules that match it.
func outControl(v6 bool, ifindex int, mark uint32) []byte {
	var b []byte
	if ifindex != 0 {
		if v6 {
			b = appendCmsg(b, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unix.SizeofInet6Pktinfo, func(d unsafe.Pointer) {
				*(*unix.Inet6Pktinfo)(d) = unix.Inet6Pktinfo{Ifindex: uint32(ifindex)}
			})
		} else {
			b = appendCmsg(b, unix.IPPROTO_IP, unix.IP_PKTINFO, unix.SizeofInet4Pktinfo, func(d unsafe.Pointer) {
				*(*unix.Inet4Pktinfo)(d) = unix.Inet4Pktinfo{Ifindex: int32(ifindex)}
			})
		}
	}
	if mark != 0 {
		b = appendCmsg(b, unix.SOL_SOCKET, unix.SO_MARK, 4, func(d unsafe.Pointer) { *(*uint32)(d) = mark })
	}
	return b
}

// appendCmsg appends a control message of size bytes, filled by put.
func appendCmsg(b []byte, level, typ int32, size int, put func(unsafe.Pointer)) []byte {
	at := len(b)
	b = append(b, make([]byte, unix.CmsgSpace(size))...)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[at]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(size))
	put(unsafe.Pointer(&b[at+unix.CmsgLen(0)]))
	return b
}
