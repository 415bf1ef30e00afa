package rawsock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/gretun/gretun/header"
	"golang.org/x/sys/unix"
)

// ctrl6Len is each received message's room for ancillary data: an
// IPV6_PKTINFO and an IPV6_TCLASS message, with room to spare.
const ctrl6Len = 128

// conn6Sys holds the socket and the message slots every batch reuses: the
// hot path allocates nothing.
type conn6Sys struct {
	rawSocket

	rhdrs []unix.Mmsghdr
	riovs []unix.Iovec
	rname []unix.RawSockaddrInet6
	rctrl []byte // ctrl6Len bytes per slot

	wmu   sync.Mutex
	whdrs []unix.Mmsghdr
	wiovs []unix.Iovec
	wname []unix.RawSockaddrInet6
	woob  outCache // writeBatch's device and mark: every message of a batch points at it
	woff  int      // first slot of the next sendmmsg
	wreq  int
	wn    int
	werr  error
	wfn   func(fd uintptr) bool
}

func (s *conn6Sys) open(proto int) error {
	ipc, rc, err := listen(fmt.Sprintf("ip6:%d", proto), "::", func(fd int) error {
		for _, o := range []struct {
			opt  int
			name string
		}{{unix.IPV6_HDRINCL, "IPV6_HDRINCL"}, {unix.IPV6_RECVPKTINFO, "IPV6_RECVPKTINFO"}, {unix.IPV6_RECVTCLASS, "IPV6_RECVTCLASS"}} {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, o.opt, 1); err != nil {
				return fmt.Errorf("rawsock: set %s: %w", o.name, err)
			}
		}
		setBuffers(fd)
		return nil
	})
	if err != nil {
		return err
	}
	s.ipc, s.rc, s.network = ipc, rc, "ip6"
	s.rfn, s.wfn = s.recvmmsg, s.sendmmsg
	s.growRead(BatchSize)
	s.growWrite(BatchSize)
	if proto == ProtoGRE {
		s.openRing(true)
	}
	return nil
}

func (s *conn6Sys) growRead(n int) {
	if n <= len(s.rhdrs) {
		return
	}
	s.rhdrs = make([]unix.Mmsghdr, n)
	s.riovs = make([]unix.Iovec, n)
	s.rname = make([]unix.RawSockaddrInet6, n)
	s.rctrl = make([]byte, n*ctrl6Len)
	for i := range s.rhdrs {
		h := &s.rhdrs[i].Hdr
		h.Iov = &s.riovs[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&s.rname[i]))
		h.Control = &s.rctrl[i*ctrl6Len]
	}
}

func (s *conn6Sys) growWrite(n int) {
	if n <= len(s.whdrs) {
		return
	}
	s.whdrs = make([]unix.Mmsghdr, n)
	s.wiovs = make([]unix.Iovec, n)
	s.wname = make([]unix.RawSockaddrInet6, n)
	for i := range s.whdrs {
		h := &s.whdrs[i].Hdr
		h.Iov = &s.wiovs[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&s.wname[i]))
		h.Namelen = unix.SizeofSockaddrInet6
		s.wname[i].Family = unix.AF_INET6
	}
}

func (s *conn6Sys) readBatch(c *Conn6, bufs [][]byte, sizes []int) (int, error) {
	if s.ipc == nil {
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
		if len(bufs[i]) <= header.IPv6HeaderLen {
			return 0, s.opError("read", errors.New("rawsock: buffer holds no more than an IPv6 header"))
		}
		s.riovs[i].Base = &bufs[i][header.IPv6HeaderLen]
		s.riovs[i].SetLen(len(bufs[i]) - header.IPv6HeaderLen)
		h := &s.rhdrs[i].Hdr
		h.Flags = 0
		h.Namelen = unix.SizeofSockaddrInet6
		h.SetControllen(ctrl6Len)
	}
	defer clear(s.riovs[:n])
	got, err := s.recv(n)
	if err != nil {
		return 0, err
	}
	for i := 0; i < got; i++ {
		h := &s.rhdrs[i].Hdr
		if h.Flags&unix.MSG_TRUNC != 0 {
			sizes[i] = 0
			c.truncated.Add(1)
			continue
		}
		l := int(s.rhdrs[i].Len)
		dst, tclass, ok := parseControl6(s.rctrl[i*ctrl6Len : i*ctrl6Len+int(h.Controllen)])
		if !ok {
			sizes[i] = 0 // no destination: nothing to demultiplex by
			continue
		}
		ip := (*[header.IPv6HeaderLen]byte)(bufs[i])
		binary.BigEndian.PutUint32(ip[0:], 6<<28|uint32(tclass)<<20)
		binary.BigEndian.PutUint32(ip[4:], uint32(l)<<16|uint32(c.proto)<<8)
		copy(ip[header.IPv6Src:], s.rname[i].Addr[:])
		copy(ip[header.IPv6Dst:], dst)
		sizes[i] = header.IPv6HeaderLen + l
	}
	return got, nil
}

// parseControl6 finds the destination address (IPV6_PKTINFO) and traffic
// class (IPV6_TCLASS) in a message's ancillary data, without allocating.
func parseControl6(b []byte) (dst []byte, tclass uint8, ok bool) {
	const hdr = unix.SizeofCmsghdr
	for len(b) >= hdr {
		m := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		l := int(m.Len)
		if l < hdr || l > len(b) {
			break
		}
		data := b[hdr:l]
		if m.Level == unix.IPPROTO_IPV6 {
			switch {
			case m.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
				dst, ok = data[:16], true
			case m.Type == unix.IPV6_TCLASS && len(data) >= 4:
				tclass = uint8(*(*int32)(unsafe.Pointer(&data[0])))
			}
		}
		next := (l + unix.SizeofPtr - 1) &^ (unix.SizeofPtr - 1)
		if next >= len(b) {
			break
		}
		b = b[next:]
	}
	return dst, tclass, ok
}

func (s *conn6Sys) recvmmsg(fd uintptr) bool {
	return mmsg(unix.SYS_RECVMMSG, fd, &s.rhdrs[0], s.rreq, &s.rn, &s.rerr)
}

func (s *conn6Sys) sendmmsg(fd uintptr) bool {
	return mmsg(unix.SYS_SENDMMSG, fd, &s.whdrs[s.woff], s.wreq, &s.wn, &s.werr)
}

func (s *conn6Sys) writeBatch(pkts [][]byte, ifindex int, mark uint32) (int, error) {
	if s.ipc == nil {
		return 0, errNotOpen
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.growWrite(len(pkts))
	oob := s.woob.get(true, ifindex, mark)
	end := 0
	for ; end < len(pkts); end++ {
		p := pkts[end]
		if len(p) < header.IPv6HeaderLen || p[0]>>4 != 6 {
			break
		}
		s.wiovs[end].Base = &p[0]
		s.wiovs[end].SetLen(len(p))
		s.wname[end].Addr = [16]byte(p[header.IPv6Dst : header.IPv6Dst+16])
		s.wname[end].Scope_id = uint32(ifindex)
		h := &s.whdrs[end].Hdr
		h.Control = nil
		h.SetControllen(0)
		if oob != nil {
			h.Control = &oob[0]
			h.SetControllen(len(oob))
		}
	}
	defer clear(s.wiovs[:end]) // drop references to the caller's packets
	sent := 0
	for sent < end {
		s.woff, s.wreq = sent, end-sent
		err := s.rc.Write(s.wfn)
		if err == nil {
			err = s.werr
		}
		if err != nil {
			return sent, s.opError("write", err)
		}
		if s.wn <= 0 {
			return sent, s.opError("write", errors.New("rawsock: sendmmsg sent nothing"))
		}
		// A short count means message sent+n failed: the next call
		// retries it and reports its error.
		sent += s.wn
	}
	if sent < len(pkts) {
		return sent, s.opError("write", ErrNotIPv6)
	}
	return sent, nil
}
