package udpsock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/gretun/gretun/header"
	"golang.org/x/sys/unix"
)

// Buffer sizes Open asks for. The receive buffer holds 16 MiB: a UDP GRO
// datagram is up to 64 segments, and at 4 MiB (rawsock's) four TCP
// streams through one tunnel overflowed it while the reader was off the
// CPU, each drop losing a whole super-packet (thousands of retransmits
// in a 5 s test, none at 16 MiB). Send buffers stay at rawsock's 4 MiB.
const (
	rcvBufBytes = 16 << 20
	sndBufBytes = 4 << 20
)

// maxPayload is the most one UDP message carries (over IPv4 the total
// length, over IPv6 the payload length are 16 bits): what a UDP_SEGMENT
// message's segments add up to at most.
const maxPayload = 1<<16 - 1 - HeaderLen

// Control buffer sizes: on receive IP_TOS (one byte), IP_TTL and UDP_GRO
// (ints); on send IP_TTL, IP_TOS (ints), UDP_SEGMENT (a uint16), the
// device to leave by (IP_PKTINFO or the larger IPV6_PKTINFO) and the
// mark (SO_MARK, an int).
var (
	rctrlLen = unix.CmsgSpace(1) + 2*unix.CmsgSpace(4)
	wctrlLen = 3*unix.CmsgSpace(4) + unix.CmsgSpace(2) + unix.CmsgSpace(unix.SizeofInet6Pktinfo)
)

// sockOpts is the socket state a message needs: the DF bit (path MTU
// discovery on or off), whether UDP checksums are left out and, over
// IPv6, the destination options header each packet carries (dst, when
// hasDst: the RFC 2473 encapsulation limit).
type sockOpts struct {
	df, noCheck, hasDst bool
	dst                 [header.IPv6ExtMinLen]byte
}

// sockaddr has room for either family's socket address; a socket's own
// family says which one it holds.
type sockaddr = unix.RawSockaddrInet6

// connSys holds the socket and the message slots every batch reuses, so
// that the data path allocates nothing of its own.
type connSys struct {
	uc    *net.UDPConn
	rc    syscall.RawConn
	local netip.AddrPort
	gso   atomic.Bool // cleared for good if the device cannot checksum (EIO)
	gro   bool
	v6    bool // an AF_INET6 socket: IPv6 headers both ways
	hl    int  // HeaderLen or HeaderLen6

	rmu    sync.Mutex
	rhdrs  []unix.Mmsghdr
	riovs  []unix.Iovec
	rnames []sockaddr
	rctrl  []byte // rctrlLen bytes per slot
	rat    int    // first slot of the next recvmmsg
	rreq   int    // and how many
	rn     int    // its result, set inside rc.Read
	rerr   error
	rfn    func(fd uintptr) bool // s.recvmmsg, made once so reads do not allocate

	wmu    sync.Mutex
	whdrs  []unix.Mmsghdr // one per message
	wiovs  []unix.Iovec   // one per packet: a message points at its run
	wnames []sockaddr
	wctrl  []byte     // wctrlLen bytes per message
	wfirst []int      // the first packet of each message
	wsegs  []int      // how many packets each message carries
	wopt   []sockOpts // what each message needs of the socket
	wat    int        // first message of the next sendmmsg
	wreq   int
	wn     int
	werr   error
	wfn    func(fd uintptr) bool
	cur    sockOpts // the socket's state now
	wvia   int      // the device index the batch leaves by, 0 for the routes' choice
	wmark  uint32   // the batch's firewall mark, 0 for none

	// The error queue, drained by whichever goroutine meets the pending
	// error a report raises (the reader, or a writer: a send fails with
	// it too), under emu.
	emu     sync.Mutex
	onError func(Error)
	ehdr    unix.Msghdr
	eiov    unix.Iovec
	ename   sockaddr
	ebuf    []byte
	ectrl   []byte
	efn     func(fd uintptr) bool // s.serve, for ServeErrors
	discard []byte
}

func (s *connSys) open(local netip.AddrPort, o Options) error {
	s.v6, s.hl = local.Addr().Is6(), HeaderLen
	network, level, opts := "udp4", unix.IPPROTO_IP, [][2]int{{unix.IP_RECVTOS, 1}, {unix.IP_RECVTTL, 1}, {unix.IP_RECVERR, 1}, {unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO}}
	if s.v6 {
		// IPv6 routers never fragment: path MTU discovery is always on.
		// UDP_NO_CHECK6_RX takes a peer's `noencap-csum` (RFC 6935).
		s.hl, network, level = HeaderLen6, "udp6", unix.IPPROTO_IPV6
		opts = [][2]int{{unix.IPV6_RECVTCLASS, 1}, {unix.IPV6_RECVHOPLIMIT, 1}, {unix.IPV6_RECVERR, 1}, {unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DO}}
	}
	uc, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(local))
	if err != nil {
		return fmt.Errorf("udpsock: %w", err)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		uc.Close()
		return fmt.Errorf("udpsock: %w", err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		f := int(fd)
		for _, opt := range opts {
			if err := unix.SetsockoptInt(f, level, opt[0], opt[1]); err != nil {
				serr = fmt.Errorf("udpsock: setsockopt %d: %w", opt[0], err)
				return
			}
		}
		// As rawsock: the FORCE variants need CAP_NET_ADMIN, the plain
		// ones are capped by net.core.[rw]mem_max; smaller is not fatal.
		if unix.SetsockoptInt(f, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBufBytes) != nil {
			unix.SetsockoptInt(f, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBufBytes)
		}
		if unix.SetsockoptInt(f, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sndBufBytes) != nil {
			unix.SetsockoptInt(f, unix.SOL_SOCKET, unix.SO_SNDBUF, sndBufBytes)
		}
		if s.v6 {
			unix.SetsockoptInt(f, unix.IPPROTO_UDP, unix.UDP_NO_CHECK6_RX, 1)
		}
		if !o.NoGRO {
			s.gro = unix.SetsockoptInt(f, unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
		}
		if !o.NoGSO {
			_, err := unix.GetsockoptInt(f, unix.IPPROTO_UDP, unix.UDP_SEGMENT)
			s.gso.Store(err == nil)
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		uc.Close()
		return err
	}
	s.uc, s.rc = uc, rc
	s.local = uc.LocalAddr().(*net.UDPAddr).AddrPort()
	s.local = netip.AddrPortFrom(s.local.Addr().Unmap(), s.local.Port())
	s.cur = sockOpts{df: true}
	s.rfn, s.wfn, s.efn = s.recvmmsg, s.sendmmsg, s.serve
	s.ebuf, s.ectrl = make([]byte, 256), make([]byte, 256)
	s.eiov.Base = &s.ebuf[0]
	s.eiov.SetLen(len(s.ebuf))
	s.ehdr.Iov = &s.eiov
	s.ehdr.SetIovlen(1)
	s.ehdr.Name = (*byte)(unsafe.Pointer(&s.ename))
	s.ehdr.Control = &s.ectrl[0]
	s.growRead(BatchSize)
	s.growWrite(BatchSize)
	return nil
}

func (s *connSys) localAddr() netip.AddrPort { return s.local }

func (s *connSys) growRead(n int) {
	if n <= len(s.rhdrs) {
		return
	}
	s.rhdrs = make([]unix.Mmsghdr, n)
	s.riovs = make([]unix.Iovec, n)
	s.rnames = make([]sockaddr, n)
	s.rctrl = make([]byte, n*rctrlLen)
	for i := range s.rhdrs {
		h := &s.rhdrs[i].Hdr
		h.Iov = &s.riovs[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&s.rnames[i]))
		h.Control = &s.rctrl[i*rctrlLen]
	}
}

func (s *connSys) growWrite(n int) {
	if n <= len(s.wiovs) {
		return
	}
	s.whdrs = make([]unix.Mmsghdr, n)
	s.wiovs = make([]unix.Iovec, n)
	s.wnames = make([]sockaddr, n)
	s.wctrl = make([]byte, n*wctrlLen)
	s.wfirst = make([]int, n)
	s.wsegs = make([]int, n)
	s.wopt = make([]sockOpts, n)
	for i := range s.whdrs {
		h := &s.whdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&s.wnames[i]))
		h.Namelen = s.nameLen()
		h.Control = &s.wctrl[i*wctrlLen]
	}
}

func (s *connSys) readBatch(c *Conn, bufs [][]byte, sizes, segs []int, whole func([]byte, int) bool) (int, error) {
	if s.uc == nil {
		return 0, net.ErrClosed
	}
	n := min(len(bufs), len(sizes))
	if whole != nil {
		n = min(n, len(segs))
	}
	if n == 0 {
		return 0, nil
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.growRead(n)
	// With GRO, read into the last slots, so that each datagram's
	// segments can be laid out from the first slot on, in slots already
	// read (as wireguard-go's splitCoalescedMessages does).
	at := 0
	if s.gro {
		at = n - max(1, n/MaxSegments)
	}
	for i := at; i < n; i++ {
		if len(bufs[i]) <= s.hl {
			return 0, fmt.Errorf("udpsock: a buffer of %d bytes leaves no room after the header", len(bufs[i]))
		}
		s.riovs[i].Base = &bufs[i][s.hl]
		s.riovs[i].SetLen(len(bufs[i]) - s.hl)
		h := &s.rhdrs[i].Hdr
		h.Namelen = s.nameLen()
		h.SetControllen(rctrlLen)
		h.Flags = 0
	}
	defer clear(s.riovs[at:n]) // keep no pointer into the caller's buffers
	s.rat, s.rreq = at, n-at
	err := s.rc.Read(s.rfn)
	if err == nil {
		err = s.rerr
	}
	if err != nil {
		return 0, s.opError("read", err)
	}
	out := 0
	for i := at; i < at+s.rn; i++ {
		h := &s.rhdrs[i]
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			c.truncated.Add(1)
			continue
		}
		tos, ttl, seg := parseControl(s.rctrl[i*rctrlLen : i*rctrlLen+int(h.Hdr.Controllen)])
		size := int(h.Len)
		if seg <= 0 || seg >= size {
			seg = size
		} else {
			c.coalesced.Add(1)
		}
		from := &s.rnames[i]
		hl := s.hl
		if whole != nil && seg < size {
			s.putHeader(bufs[i], from, tos, ttl, seg)
			if whole(bufs[i][:hl+size], seg) {
				// Slots before i are free or read already: swap the
				// datagram into slot out rather than copy it.
				bufs[out], bufs[i] = bufs[i], bufs[out]
				sizes[out], segs[out] = hl+size, seg
				out++
				continue
			}
		}
		payload := bufs[i][hl : hl+size]
		for off := 0; off < size || size == 0; off += seg {
			// Slot i is the source: a segment may go to it (the copy moves
			// bytes already copied elsewhere), never past it, where an
			// unread datagram lies.
			if out > i {
				c.truncated.Add(1)
				break
			}
			end := min(off+seg, size)
			copy(bufs[out][hl:], payload[off:end])
			s.putHeader(bufs[out], from, tos, ttl, end-off)
			sizes[out] = hl + end - off
			if whole != nil {
				segs[out] = 0
			}
			out++
			if size == 0 {
				break
			}
		}
	}
	return out, nil
}

// putHeader writes the socket family's header in front of n payload bytes
// at b[s.hl:] of a datagram from `from`.
func (s *connSys) putHeader(b []byte, from *sockaddr, tos, ttl uint8, n int) {
	if s.v6 {
		putHeader6(b, from, s.local, tos, ttl, n)
	} else {
		putHeader(b, (*unix.RawSockaddrInet4)(unsafe.Pointer(from)), s.local, tos, ttl, n)
	}
}

// parseControl reads the TOS, TTL and GRO segment size of a received
// datagram from its control messages; seg is 0 when it was not coalesced.
func parseControl(b []byte) (tos, ttl uint8, seg int) {
	ttl = 64
	for len(b) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(b) {
			return
		}
		data := b[unix.CmsgLen(0):l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_TOS && len(data) >= 1:
			tos = data[0]
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_TTL && len(data) >= 4,
			h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_HOPLIMIT && len(data) >= 4:
			ttl = uint8(binary.NativeEndian.Uint32(data))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_TCLASS && len(data) >= 4:
			tos = uint8(binary.NativeEndian.Uint32(data))
		case h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && len(data) >= 4:
			seg = int(binary.NativeEndian.Uint32(data))
		}
		b = b[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(b)):]
	}
	return
}

// putHeader writes, in front of n payload bytes at b[HeaderLen:], the
// IPv4 and UDP headers of a datagram from `from` to local.
func putHeader(b []byte, from *unix.RawSockaddrInet4, local netip.AddrPort, tos, ttl uint8, n int) {
	ip := header.IPv4(b[:header.IPv4MinLen])
	binary.BigEndian.PutUint32(ip[0:], 0x45<<24|uint32(tos)<<16|uint32(HeaderLen+n))
	binary.BigEndian.PutUint32(ip[4:], 0)
	binary.BigEndian.PutUint32(ip[8:], uint32(ttl)<<24|uint32(header.ProtoUDP)<<16)
	copy(ip[header.IPv4Src:], from.Addr[:])
	dst := local.Addr().As4()
	copy(ip[header.IPv4Dst:], dst[:])
	ip.UpdateChecksum()
	u := b[header.IPv4MinLen:HeaderLen]
	binary.BigEndian.PutUint16(u[header.UDPSrcPort:], header.Htons(from.Port)) // Htons swaps either way
	binary.BigEndian.PutUint16(u[header.UDPDstPort:], local.Port())
	binary.BigEndian.PutUint32(u[header.UDPLength:], uint32(header.UDPLen+n)<<16)
}

// putHeader6 writes, in front of n payload bytes at b[HeaderLen6:], the
// IPv6 and UDP headers of a datagram from `from` to local. The extension
// headers it came with (an encapsulation limit) the kernel has consumed.
func putHeader6(b []byte, from *sockaddr, local netip.AddrPort, tclass, hops uint8, n int) {
	ip := header.IPv6(b[:header.IPv6HeaderLen])
	ip.Encode(&header.IPv6Fields{
		TrafficClass: tclass, PayloadLen: uint16(header.UDPLen + n), NextHeader: header.ProtoUDP, HopLimit: hops,
		Src: netip.AddrFrom16(from.Addr), Dst: local.Addr(),
	})
	u := b[header.IPv6HeaderLen:HeaderLen6]
	binary.BigEndian.PutUint16(u[header.UDPSrcPort:], header.Htons(from.Port))
	binary.BigEndian.PutUint16(u[header.UDPDstPort:], local.Port())
	binary.BigEndian.PutUint32(u[header.UDPLength:], uint32(header.UDPLen+n)<<16)
}

// nameLen is the size of the socket's own family's address.
func (s *connSys) nameLen() uint32 {
	if s.v6 {
		return unix.SizeofSockaddrInet6
	}
	return unix.SizeofSockaddrInet4
}

// recvmmsg is what rc.Read runs: one recvmmsg into slots [rat, rat+rreq).
func (s *connSys) recvmmsg(fd uintptr) bool {
	var ready bool
	s.rn, s.rerr, ready = s.mmsg(fd, unix.SYS_RECVMMSG, &s.rhdrs[s.rat], s.rreq)
	return ready
}

// mmsg makes one recvmmsg or sendmmsg (trap) call over n message slots
// from h, as rc.Read and rc.Write run it: ready is false on EAGAIN, so that
// the goroutine parks in the netpoller. With IP_RECVERR each ICMP error
// about our datagrams is also a pending socket error, which the next
// recvmmsg or send returns once: the report is in the error queue, so
// mmsg reads it and calls again, once. Only once: a send the kernel
// refuses itself (larger than the path MTU) queues a report of its own
// each time it fails.
func (s *connSys) mmsg(fd, trap uintptr, h *unix.Mmsghdr, n int) (got int, err error, ready bool) {
	retried := false
	for {
		r, _, e := unix.Syscall6(trap, fd, uintptr(unsafe.Pointer(h)), uintptr(n), 0, 0, 0)
		switch {
		case e == 0:
			return int(r), nil, true
		case e == unix.EINTR:
			continue
		case e == unix.EAGAIN:
			return 0, nil, false
		case s.drainErrors(fd) > 0 && !retried:
			retried = true
			continue
		case trap == unix.SYS_SENDMMSG:
			return 0, os.NewSyscallError("sendmmsg", e), true
		default:
			return 0, os.NewSyscallError("recvmmsg", e), true
		}
	}
}

// drainErrors reads the error queue until it is empty, handing each
// report to onError, and returns how many it read.
func (s *connSys) drainErrors(fd uintptr) int {
	s.emu.Lock()
	defer s.emu.Unlock()
	n := 0
	for {
		s.ehdr.Namelen = s.nameLen()
		s.ehdr.SetControllen(len(s.ectrl))
		s.ehdr.Flags = 0
		r, _, e := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&s.ehdr)), unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return n
		}
		n++
		if er, ok := s.parseError(int(r)); ok && s.onError != nil {
			s.onError(er)
		}
	}
}

// parseError reads the report of the error queue message just received
// (payload length n).
func (s *connSys) parseError(n int) (Error, bool) {
	b := s.ectrl[:s.ehdr.Controllen]
	for len(b) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(b) {
			break
		}
		data := b[unix.CmsgLen(0):l]
		if (h.Level == unix.IPPROTO_IP && h.Type == unix.IP_RECVERR || h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_RECVERR) &&
			len(data) >= int(unsafe.Sizeof(unix.SockExtendedErr{})) {
			ee := (*unix.SockExtendedErr)(unsafe.Pointer(&data[0]))
			er := Error{Kind: OtherError, Payload: s.ebuf[:min(n, len(s.ebuf))]}
			er.To = sockAddrPort(&s.ename)
			er.From = s.local.Addr()
			if off := int(unsafe.Sizeof(*ee)); len(data) >= off+unix.SizeofSockaddrInet6 {
				if sa := (*sockaddr)(unsafe.Pointer(&data[off])); sa.Family == unix.AF_INET || sa.Family == unix.AF_INET6 {
					er.From = sockAddrPort(sa).Addr()
				}
			} else if len(data) >= off+unix.SizeofSockaddrInet4 {
				if sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&data[off])); sa.Family == unix.AF_INET {
					er.From = netip.AddrFrom4(sa.Addr)
				}
			}
			switch {
			case ee.Errno == uint32(unix.EMSGSIZE):
				er.Kind, er.MTU = TooBig, int(ee.Info)
			case ee.Origin == unix.SO_EE_ORIGIN_ICMP && ee.Type == 3 && ee.Code == 3,
				ee.Origin == unix.SO_EE_ORIGIN_ICMP6 && ee.Type == 1 && ee.Code == 4:
				er.Kind = Unreachable
			}
			return er, true
		}
		b = b[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(b)):]
	}
	return Error{}, false
}

// sockAddrPort reads a socket address of either family.
func sockAddrPort(sa *sockaddr) netip.AddrPort {
	if sa.Family == unix.AF_INET6 {
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), header.Htons(sa.Port))
	}
	s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
	return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), header.Htons(s4.Port))
}

// serveErrors is ServeErrors: the socket's only reader.
func (s *connSys) serveErrors() error {
	if s.uc == nil {
		return net.ErrClosed
	}
	s.discard = make([]byte, 2048)
	err := s.rc.Read(s.efn)
	if err == nil {
		err = net.ErrClosed
	}
	return s.opError("read", err)
}

// serve is what ServeErrors has rc.Read run: drain the error queue and
// whatever datagrams arrived, then wait for more.
func (s *connSys) serve(fd uintptr) bool {
	s.drainErrors(fd)
	for {
		_, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&s.discard[0])), uintptr(len(s.discard)), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN {
			return false
		}
		if e != 0 && e != unix.EINTR && s.drainErrors(fd) == 0 {
			return false // not a report pending: wait
		}
	}
}

func (s *connSys) writeBatch(pkts [][]byte, ifindex int, mark uint32) (int, error) {
	if s.uc == nil {
		return 0, net.ErrClosed
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.wvia, s.wmark = ifindex, mark
	s.growWrite(len(pkts))
	defer clear(s.wiovs[:len(pkts)])
	n, err := s.write(pkts)
	if err != nil && errors.Is(err, unix.EIO) && s.gso.Load() {
		// EIO: a device on the way cannot checksum, which UDP_SEGMENT
		// needs (wireguard-go's errShouldDisableUDPGSO). Go on without.
		s.gso.Store(false)
		m, err := s.write(pkts[n:])
		return n + m, err
	}
	return n, err
}

// write lays pkts out as messages, then sends them in runs that need the
// same socket state.
func (s *connSys) write(pkts [][]byte) (int, error) {
	m, end := s.messages(pkts)
	for sent := 0; sent < m; {
		o := s.wopt[sent]
		if o != s.cur {
			if err := s.setOpts(o); err != nil {
				return s.wfirst[sent], s.opError("write", err)
			}
		}
		run := sent + 1
		for run < m && s.wopt[run] == o {
			run++
		}
		for sent < run {
			s.wat, s.wreq = sent, run-sent
			err := s.rc.Write(s.wfn)
			if err == nil {
				err = s.werr
			}
			if err != nil {
				if (s.wsegs[sent] > 1 || s.wopt[sent].hasDst) && errors.Is(err, unix.EINVAL) {
					// udp_send_skb refuses a segment larger than the
					// path with EINVAL: say what it means.
					err = os.NewSyscallError("sendmmsg", unix.EMSGSIZE)
				}
				return s.wfirst[sent], s.opError("write", err)
			}
			// A short count means message sent+wn failed: the kernel
			// drops that error, so the next call retries it and says.
			sent += s.wn
		}
	}
	if end < len(pkts) {
		return end, s.opError("write", ErrNotUDP)
	}
	return len(pkts), nil
}

// messages fills the message slots for pkts, up to the first one that is
// not a whole IP/UDP packet of the socket's family (end), and returns how
// many messages it made. With GSO, consecutive packets to one destination
// with the same options and payload length (the last may be shorter)
// share one message.
func (s *connSys) messages(pkts [][]byte) (m, end int) {
	gso := s.gso.Load()
	var (
		prev   outKey // of message m-1
		segLen int
		total  int
		closed bool
	)
	for i, p := range pkts {
		k, hl, ok := s.parseOut(p)
		if !ok {
			return m, i
		}
		pl := len(p) - hl
		if pl > 0 {
			s.wiovs[i].Base = &p[hl]
		} else {
			s.wiovs[i].Base = nil
		}
		s.wiovs[i].SetLen(pl)
		if gso && m > 0 && k == prev && !k.opts.noCheck && !closed && pl <= segLen && pl > 0 &&
			s.wsegs[m-1] < MaxSegments && total+pl <= maxPayload {
			s.whdrs[m-1].Hdr.Iovlen++
			s.wsegs[m-1]++
			total += pl
			closed = pl < segLen // a shorter segment ends the message
			if s.wsegs[m-1] == 2 {
				s.setControl(m-1, &k, segLen)
			}
			continue
		}
		h := &s.whdrs[m].Hdr
		h.Iov = &s.wiovs[i]
		h.SetIovlen(1)
		s.putName(&s.wnames[m], &k)
		s.wfirst[m], s.wsegs[m], s.wopt[m] = i, 1, k.opts
		seg := 0
		if gso && k.opts.hasDst && !k.opts.noCheck && pl > 0 {
			// Linux counts a sticky IPV6_DSTOPTS twice when it sizes a
			// plain datagram against the path MTU (8 bytes refused
			// short of it) but once when it sizes a GSO segment: send
			// even a single datagram as one segment.
			seg = pl
		}
		s.setControl(m, &k, seg)
		prev, segLen, total, closed = k, pl, pl, false
		m++
	}
	return m, len(pkts)
}

// outKey is what a packet asks of its message: destination, TTL (hop
// limit), TOS (traffic class) and socket state.
type outKey struct {
	dst      [16]byte // an IPv4 address in the first 4
	port     uint16
	ttl, tos uint8
	opts     sockOpts
}

// parseOut reads the outer headers of p: IPv4 without options, or IPv6
// with at most a destination options header, then UDP. hl is where the
// payload starts.
func (s *connSys) parseOut(p []byte) (k outKey, hl int, ok bool) {
	var udp int
	if s.v6 {
		if len(p) < HeaderLen6 || p[0]>>4 != 6 {
			return k, 0, false
		}
		ip := header.IPv6(p)
		udp = header.IPv6HeaderLen
		switch ip.NextHeader() {
		case header.ProtoUDP:
		case header.IPv6DestOpts:
			if len(p) < HeaderLen6+header.IPv6ExtMinLen || p[udp] != header.ProtoUDP || p[udp+1] != 0 {
				return k, 0, false
			}
			k.opts.hasDst = true
			copy(k.opts.dst[:], p[udp:])
			k.opts.dst[0] = 0 // the kernel writes the next header
			udp += header.IPv6ExtMinLen
		default:
			return k, 0, false
		}
		k.dst, k.ttl, k.tos, k.opts.df = ip.Dst(), ip.HopLimit(), ip.TrafficClass(), true
	} else {
		if len(p) < HeaderLen || p[0] != 0x45 || p[header.IPv4Protocol] != header.ProtoUDP {
			return k, 0, false
		}
		ip := header.IPv4(p)
		copy(k.dst[:4], p[header.IPv4Dst:])
		k.ttl, k.tos, k.opts.df = ip.TTL(), ip.TOS(), ip.DF()
		udp = header.IPv4MinLen
	}
	k.port = binary.BigEndian.Uint16(p[udp+header.UDPDstPort:])
	k.opts.noCheck = p[udp+header.UDPChecksum] == 0 && p[udp+header.UDPChecksum+1] == 0
	return k, udp + header.UDPLen, true
}

// putName writes k's destination as the socket's family's address.
func (s *connSys) putName(sa *sockaddr, k *outKey) {
	if s.v6 {
		*sa = sockaddr{Family: unix.AF_INET6, Port: header.Htons(k.port), Addr: k.dst}
		return
	}
	s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
	*s4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Port: header.Htons(k.port)}
	copy(s4.Addr[:], k.dst[:4])
}

// setControl writes message m's control messages: the packet's TTL and
// TOS (hop limit and traffic class), and UDP_SEGMENT with seg when seg
// is not 0.
func (s *connSys) setControl(m int, k *outKey, seg int) {
	b := s.wctrl[m*wctrlLen : (m+1)*wctrlLen]
	level, ttl, tos := int32(unix.IPPROTO_IP), int32(unix.IP_TTL), int32(unix.IP_TOS)
	if s.v6 {
		level, ttl, tos = unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, unix.IPV6_TCLASS
	}
	n := putCmsg(b, level, ttl, uint32(k.ttl), 4)
	n += putCmsg(b[n:], level, tos, uint32(k.tos), 4)
	if seg > 0 {
		n += putCmsg(b[n:], unix.SOL_UDP, unix.UDP_SEGMENT, uint32(seg), 2)
	}
	if s.wvia != 0 {
		n += s.putVia(b[n:])
	}
	if s.wmark != 0 {
		n += putCmsg(b[n:], unix.SOL_SOCKET, unix.SO_MARK, s.wmark, 4)
	}
	s.whdrs[m].Hdr.SetControllen(n)
}

// putVia writes the control message that sends a datagram out of device
// s.wvia from the socket's own address: over IPv4 the kernel takes the
// source from the message (ipi_spec_dst), and would pick the device's
// address for a zero one. Over IPv6 the socket's address stands, and
// the kernel takes the device only as a preference among routes
// (RT6_LOOKUP_F_IFACE is set only without a source): config refuses
// `dev` inside UDP over IPv6.
func (s *connSys) putVia(b []byte) int {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	data := unsafe.Pointer(&b[unix.CmsgLen(0)])
	src := s.local.Addr().As16()
	if s.v6 {
		h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
		*(*unix.Inet6Pktinfo)(data) = unix.Inet6Pktinfo{Ifindex: uint32(s.wvia)}
		return unix.CmsgSpace(unix.SizeofInet6Pktinfo)
	}
	h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
	*(*unix.Inet4Pktinfo)(data) = unix.Inet4Pktinfo{Ifindex: int32(s.wvia), Spec_dst: [4]byte(src[12:])}
	return unix.CmsgSpace(unix.SizeofInet4Pktinfo)
}

// putCmsg writes one control message with a size-byte value (2 or 4) at
// the start of b and returns the room it takes.
func putCmsg(b []byte, level, typ int32, v uint32, size int) int {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(size))
	data := b[unix.CmsgLen(0):]
	if size == 2 {
		binary.NativeEndian.PutUint16(data, uint16(v))
	} else {
		binary.NativeEndian.PutUint32(data, v)
	}
	return unix.CmsgSpace(size)
}

// setOpts puts the socket in the state o: DF set with path MTU discovery
// (IP_PMTUDISC_DO: larger than the path fails with EMSGSIZE) or clear
// with the kernel fragmenting (IP_PMTUDISC_DONT); UDP checksums on or off.
func (s *connSys) setOpts(o sockOpts) error {
	var serr error
	err := s.rc.Control(func(fd uintptr) {
		f := int(fd)
		pmtu, noCheck := unix.IP_PMTUDISC_DONT, 0
		if o.df {
			pmtu = unix.IP_PMTUDISC_DO
		}
		if o.noCheck {
			noCheck = 1
		}
		if s.v6 {
			// UDP_NO_CHECK6_TX: a zero checksum, as RFC 6935 allows
			// tunnels. IPV6_DSTOPTS (sticky) needs CAP_NET_RAW.
			serr = unix.SetsockoptInt(f, unix.IPPROTO_UDP, unix.UDP_NO_CHECK6_TX, noCheck)
			if serr == nil && (o.hasDst != s.cur.hasDst || o.dst != s.cur.dst) {
				var opt []byte
				if o.hasDst {
					opt = o.dst[:]
				}
				if serr = unix.SetsockoptString(f, unix.IPPROTO_IPV6, unix.IPV6_DSTOPTS, string(opt)); errors.Is(serr, unix.EPERM) {
					serr = fmt.Errorf("sending an encapsulation limit (IPV6_DSTOPTS) needs CAP_NET_RAW: %w", serr)
				}
			}
			return
		}
		if serr = unix.SetsockoptInt(f, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, pmtu); serr == nil {
			serr = unix.SetsockoptInt(f, unix.SOL_SOCKET, unix.SO_NO_CHECK, noCheck)
		}
	})
	if err == nil {
		err = serr
	}
	if err == nil {
		s.cur = o
	}
	return err
}

// sendmmsg is what rc.Write runs: one sendmmsg of messages [wat,
// wat+wreq).
func (s *connSys) sendmmsg(fd uintptr) bool {
	var ready bool
	s.wn, s.werr, ready = s.mmsg(fd, unix.SYS_SENDMMSG, &s.whdrs[s.wat], s.wreq)
	switch {
	case !ready || s.werr != nil:
	case s.wn == 0:
		s.werr = errors.New("udpsock: sendmmsg sent nothing")
	case s.wn < s.wreq:
		// Message wn failed, perhaps with a report's pending error,
		// which sendmmsg then drops: read the reports.
		s.drainErrors(fd)
	}
	return ready
}

// opError wraps err as rawsock does: a *net.OpError naming the operation
// and the local address, which errors.Is sees through.
func (s *connSys) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	network := "udp4"
	if s.v6 {
		network = "udp6"
	}
	return &net.OpError{Op: op, Net: network, Addr: net.UDPAddrFromAddrPort(s.local), Err: err}
}

func (s *connSys) close() error {
	if s.uc == nil {
		return net.ErrClosed
	}
	return s.uc.Close()
}
