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
