package rawsock

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"unsafe"

	"github.com/gretun/gretun/header"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// sockBufBytes is the receive and send buffer size Open asks for: about
// 2800 full-size packets, enough to ride out a scheduling hiccup of the
// receive loop at a few hundred thousand packets per second.
const sockBufBytes = 4 << 20

// connSys holds the socket and the message slots reused by every batch, so
// that the hot path allocates nothing of its own.
type connSys struct {
	rawSocket
	pc *ipv4.PacketConn

	// The receive side calls recvmmsg itself rather than through x/net,
	// whose ReadBatch allocates every packet's source address: the
	// headers ask for no address, so the kernel writes none.
	rhdrs []unix.Mmsghdr // rhdrs[i].Hdr.Iov == &riovs[i]
	riovs []unix.Iovec

	wmu    sync.Mutex
	wmsgs  []ipv4.Message
	wbufs  [][]byte     // wmsgs[i].Buffers == wbufs[i:i+1]
	waddrs []net.IPAddr // wmsgs[i].Addr == &waddrs[i]
	wips   [][4]byte    // waddrs[i].IP == wips[i][:]
	woob   outCache     // writeBatch's device and mark
}

func (s *connSys) open(proto int) error {
	ipc, rc, err := listen(fmt.Sprintf("ip4:%d", proto), "0.0.0.0", func(fd int) error {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_HDRINCL, 1); err != nil {
			return fmt.Errorf("rawsock: set IP_HDRINCL: %w", err)
		}
		setBuffers(fd)
		return nil
	})
	if err != nil {
		return err
	}
	s.ipc, s.rc, s.network = ipc, rc, "ip4"
	s.rfn = s.recvmmsg
	s.pc = ipv4.NewPacketConn(ipc)
	s.growRead(BatchSize)
	s.growWrite(BatchSize)
	if proto == ProtoGRE {
		s.openRing(false)
	}
	return nil
}

// setBuffers asks for sockBufBytes of receive and send buffer. The FORCE
// variants need CAP_NET_ADMIN in the initial user namespace; the plain
// ones are capped by net.core.[rw]mem_max. A smaller buffer is not fatal,
// so their errors are ignored.
func setBuffers(fd int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, sockBufBytes) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, sockBufBytes)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sockBufBytes) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sockBufBytes)
	}
}

func (s *connSys) growRead(n int) {
	if n <= len(s.rhdrs) {
		return
	}
	s.rhdrs = make([]unix.Mmsghdr, n)
	s.riovs = make([]unix.Iovec, n)
	for i := range s.rhdrs {
		s.rhdrs[i].Hdr.Iov = &s.riovs[i]
		s.rhdrs[i].Hdr.SetIovlen(1)
	}
}

func (s *connSys) growWrite(n int) {
	if n <= len(s.wmsgs) {
		return
	}
	s.wmsgs = make([]ipv4.Message, n)
	s.wbufs = make([][]byte, n)
	s.waddrs = make([]net.IPAddr, n)
	s.wips = make([][4]byte, n)
	for i := range s.wmsgs {
		s.waddrs[i].IP = s.wips[i][:]
		s.wmsgs[i].Buffers = s.wbufs[i : i+1 : i+1]
		s.wmsgs[i].Addr = &s.waddrs[i]
	}
}

func (s *connSys) readBatch(c *Conn, bufs [][]byte, sizes []int) (int, error) {
	if s.pc == nil {
		return 0, errNotOpen
	}
	n := min(len(bufs), len(sizes))
	if n == 0 {
		return 0, nil
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.growRead(n)
	for i := range n {
		s.riovs[i].Base = unsafe.SliceData(bufs[i])
		s.riovs[i].SetLen(len(bufs[i]))
		s.rhdrs[i].Hdr.Flags = 0
	}
	// Keep no pointer into the caller's buffers once the batch is over.
	defer clear(s.riovs[:n])
	got, err := s.recv(n)
	if err != nil {
		return 0, err
	}
	for i := 0; i < got; i++ {
		if s.rhdrs[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
			sizes[i] = 0
			c.truncated.Add(1)
			continue
		}
		sizes[i] = int(s.rhdrs[i].Len)
	}
	return got, nil
}

// recvmmsg is what rc.Read runs: one recvmmsg into the first s.rreq
// slots (mmsg).
func (s *connSys) recvmmsg(fd uintptr) bool {
	return mmsg(unix.SYS_RECVMMSG, fd, &s.rhdrs[0], s.rreq, &s.rn, &s.rerr)
}

func (s *connSys) writeBatch(pkts [][]byte, ifindex int, mark uint32) (int, error) {
	if s.pc == nil {
		return 0, errNotOpen
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.growWrite(len(pkts))
	defer clear(s.wbufs[:len(pkts)]) // drop references to the caller's packets
	oob := s.woob.get(false, ifindex, mark)

	// Fill slots up to the first packet without a usable header.
	end := 0
	for ; end < len(pkts); end++ {
		p := header.IPv4(pkts[end])
		if len(p) < header.IPv4MinLen || p.Version() != 4 {
			break
		}
		s.wbufs[end] = p
		s.wips[end] = p.Dst()
		s.wmsgs[end].OOB = oob
	}
	sent := 0
	for sent < end {
		n, err := s.pc.WriteBatch(s.wmsgs[sent:end], 0)
		if err != nil {
			return sent, s.opError("write", err)
		}
		if n <= 0 {
			// sendmmsg reports an error for its first message itself;
			// zero without one would loop forever.
			return sent, s.opError("write", errors.New("rawsock: sendmmsg sent nothing"))
		}
		// A short count means message sent+n failed: the kernel drops
		// that error, so the next call retries the packet and reports it.
		sent += n
	}
	if sent < len(pkts) {
		return sent, s.opError("write", ErrNotIPv4)
	}
	return sent, nil
}
