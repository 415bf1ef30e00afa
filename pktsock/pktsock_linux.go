package pktsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gretun/gretun/header"
)

// sockBufBytes is the send buffer asked for, as rawsock does for its
// sockets: room for a few batches of full-size frames.
const sockBufBytes = 4 << 20

// Conn is an AF_PACKET socket that sends Ethernet frames on one device.
// It is not safe for concurrent use: one goroutine sends on it.
type Conn struct {
	fd      int
	ifindex int
	addr    unix.RawSockaddrLinklayer
	iovs    []unix.Iovec
	msgs    []unix.Mmsghdr
}

// Open opens a send-only AF_PACKET socket (SOCK_RAW, protocol 0) bound to
// the device ifindex in the calling thread's network namespace, with the
// qdisc bypassed and a 4 MiB send buffer. It needs CAP_NET_RAW.
func Open(ifindex int) (*Conn, error) {
	if ifindex <= 0 {
		return nil, fmt.Errorf("pktsock: invalid ifindex %d", ifindex)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open AF_PACKET socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind AF_PACKET socket to ifindex %d: %w", ifindex, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("set PACKET_QDISC_BYPASS: %w", err)
	}
	// SO_SNDBUFFORCE passes the net.core.wmem_max cap with CAP_NET_ADMIN;
	// without it the plain option gets what the cap allows.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sockBufBytes) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sockBufBytes)
	}
	return &Conn{
		fd:      fd,
		ifindex: ifindex,
		addr: unix.RawSockaddrLinklayer{
			Family:   unix.AF_PACKET,
			Protocol: header.Htons(unix.ETH_P_IP),
			Ifindex:  int32(ifindex),
		},
	}, nil
}

// Ifindex is the device the socket sends on.
func (c *Conn) Ifindex() int { return c.ifindex }

// WriteBatch sends frames (each a 14-byte Ethernet header and an IPv4
// packet) with as few sendmmsg(2) calls as it takes. Its error contract is
// rawsock's: on error, n is the index of the frame that failed; frames
// before it were sent, frames after it were not tried. Callers skip frame n
// and call again with the rest. Errors are wrapped as rawsock's are (a
// *net.OpError around an *os.SyscallError): test them with errors.Is.
func (c *Conn) WriteBatch(frames [][]byte) (int, error) {
	if c.fd < 0 {
		return 0, opError(net.ErrClosed)
	}
	if len(frames) > len(c.msgs) {
		// Grown once to the largest batch; x/sys/unix has no Sendmmsg
		// wrapper, so the headers are built here and reused.
		c.iovs = make([]unix.Iovec, len(frames))
		c.msgs = make([]unix.Mmsghdr, len(frames))
	}
	for i, f := range frames {
		if len(f) == 0 {
			return i, opError(errors.New("pktsock: empty frame"))
		}
		c.iovs[i].Base = &f[0]
		c.iovs[i].SetLen(len(f))
		h := &c.msgs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&c.addr))
		h.Namelen = unix.SizeofSockaddrLinklayer
		h.Iov = &c.iovs[i]
		h.SetIovlen(1)
	}
	sent := 0
	var err error
	for sent < len(frames) {
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(c.fd),
			uintptr(unsafe.Pointer(&c.msgs[sent])), uintptr(len(frames)-sent), 0, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			err = opError(os.NewSyscallError("sendmmsg", errno))
			break
		}
		if r == 0 {
			err = opError(errors.New("pktsock: sendmmsg sent nothing"))
			break
		}
		sent += int(r)
	}
	runtime.KeepAlive(frames)
	// Drop the references to the caller's buffers.
	for i := range frames {
		c.iovs[i].Base = nil
	}
	return sent, err
}

// Close closes the socket. It must not run while WriteBatch does.
func (c *Conn) Close() error {
	if c.fd < 0 {
		return net.ErrClosed
	}
	err := unix.Close(c.fd)
	c.fd = -1
	return err
}

// opError wraps a WriteBatch error the way rawsock wraps its own (and the
// net package and mdlayher/packet theirs): a *net.OpError around an
// *os.SyscallError or a sentinel, which errors.Is sees through.
func opError(err error) error {
	return &net.OpError{Op: "write", Net: "packet", Err: err}
}
