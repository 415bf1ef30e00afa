package rawsock

import (
	"errors"
	"net"
	"syscall"
)

// The error contract of Conn, for the loops that drive it. Errors come back
// wrapped (a *net.OpError around an *os.SyscallError); test them with
// errors.Is.
//
// ReadBatch:
//
//   - net.ErrClosed: the Conn was closed (possibly while ReadBatch was
//     blocked). The read loop returns.
//   - anything else (ENOMEM, ENOBUFS under memory pressure): nothing was
//     read; the loop continues, with a bounded number of consecutive
//     retries. The socket does not set IP_RECVERR, so ICMP errors about
//     our packets never surface here as asynchronous socket errors; they
//     are read separately through OpenICMP.
//   - A packet larger than its buffer is not an error: its slot comes back
//     with size 0 and is counted in Stats().Truncated.
//
// WriteBatch returns (n, err): packets [0, n) were sent, packet n failed
// with err, packets after n were not tried. The loop drops packet n, counts
// it, and calls WriteBatch again with pkts[n+1:]:
//
//   - syscall.EMSGSIZE: packet n is larger than the MTU of the device the
//     route to its destination leaves by. IP_HDRINCL packets are never
//     fragmented by the kernel, whatever their DF bit. Drop, count, continue;
//     the engine should lower the tunnel MTU and tell the inner sender.
//   - syscall.ENOBUFS: a transmit queue or the neighbour queue overflowed.
//     Drop, count, continue (like wireguard-go, never retry in a loop).
//   - syscall.EHOSTUNREACH, syscall.ENETUNREACH: no route to the outer
//     destination. Drop, count as "no route", continue.
//   - syscall.EPERM: a firewall rule dropped the packet. Drop, continue.
//   - syscall.EINVAL, syscall.EACCES: the packet's header is unusable
//     (e.g. a broadcast destination). Drop, continue.
//   - ErrNotIPv4: pkts[n] does not start with an IPv4 header, so it has no
//     destination to route by; it was not passed to the kernel. Drop,
//     continue.
//   - net.ErrClosed: the Conn was closed. The write loop returns.
//
// EAGAIN never reaches the caller: the Go runtime's poller waits for
// buffer space.

// ErrNotIPv4 is returned by WriteBatch for a packet too short to hold an
// IPv4 header or whose version field is not 4.
var ErrNotIPv4 = errors.New("rawsock: packet does not start with an IPv4 header")

// Continue reports whether a read or write loop should go on after err:
// false only when the Conn is closed. A nil error also continues.
func Continue(err error) bool {
	return !errors.Is(err, net.ErrClosed)
}

// IsTooBig reports whether err says the packet exceeded the egress MTU.
func IsTooBig(err error) bool {
	return errors.Is(err, syscall.EMSGSIZE)
}

// errNotOpen is returned by the methods of a Conn that Open did not make.
var errNotOpen = errors.New("rawsock: Conn not opened with Open")
