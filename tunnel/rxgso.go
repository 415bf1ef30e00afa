package tunnel

// The receive path's fast path for UDP GRO datagrams (encap fou): a
// datagram whose segments are one TCP flow's run, each in the same tunnel
// header, is rebuilt in place into the super-packet the far sender's TCP
// handed its TUN, and written to the device as one TSO packet. The
// segment path (receive.go) would copy each segment out of the datagram,
// decapsulate it, and have wireguard's writer check every TCP checksum and
// copy the payloads together again. Here the payloads move once, no
// checksum is summed (the UDP checksum the kernel verified covered them:
// UDP GRO coalesces no datagram without one), and no flow table is kept.
//
// Only what the segment path would deliver unchanged, to a point-to-point
// IP tunnel whose device takes super-packets, is taken: no capture, no MSS
// clamping, no GRE checksum or sequence number, IPv4 inside without
// options. The rest goes the segment path, untouched.

import (
	"bytes"
	"errors"

	"github.com/gretun/gretun/decap"
	"github.com/gretun/gretun/header"
)

// groReader is an underlay that can hand a UDP GRO datagram whole
// (udpsock.Conn.ReadBatchGRO): whole decides for each coalesced datagram;
// segs[i] is the segment size of a datagram kept whole, else 0.
type groReader interface {
	ReadBatchGRO(bufs [][]byte, sizes, segs []int, whole func(pkt []byte, seg int) bool) (int, error)
}

// gsoDevice is a device that takes TCP super-packets whose virtio-net
// header the caller wrote (tundev.Device.WriteGSO), when CanWriteGSO.
type gsoDevice interface {
	WriteGSO(bufs [][]byte, offset int) (int, error)
	CanWriteGSO() bool
}

// ReadBatchGRO reads through the socket's ReadBatchGRO, or reads segments
// only from a socket that has none.
func (u *udpIPv4) ReadBatchGRO(bufs [][]byte, sizes, segs []int, whole func([]byte, int) bool) (int, error) {
	if r, ok := u.c.(groReader); ok {
		return r.ReadBatchGRO(bufs, sizes, segs, whole)
	}
	n, err := u.c.ReadBatch(bufs, sizes)
	clear(segs[:n])
	return n, err
}

// tcpRun is the shape of a UDP GRO datagram's payload that is one TCP
// flow's run of segments (tcpRunOf).
type tcpRun struct {
	encap int   // the tunnel header in front of each inner packet
	thl   int   // the TCP header's length
	mss   int   // payload bytes of each segment but the last
	n     int   // segments
	bytes int   // inner bytes of all the segments, as the segment path counts them
	flags uint8 // the super-packet's TCP flags: the first's, with any PSH and the last's FIN
}

// tcpRunOf reports whether payload, cut in segments of seg bytes, each an
// encap-byte tunnel header and an inner packet, is two or more IPv4 TCP
// segments of one flow as TCP segmentation makes them: tunnel headers
// byte for byte the same, IPv4 without options or fragments, headers the
// same but for the IP ID, length and checksum and the TCP sequence number
// and checksum, sequence numbers contiguous, every segment but the last
// full, FIN on the last only, and no SYN, RST, URG or CWR. PSH may be on
// any: the sender's GSO runs take the segments of several of its TUN's
// super-packets, each with PSH on its last, and the super-packet rebuilt
// carries it (a receiving TCP takes PSH as a hint; the kernel's GRO sets
// it on what it merged too).
func tcpRunOf(payload []byte, seg, encap int) (tcpRun, bool) {
	const ihl = header.IPv4MinLen
	r := tcpRun{encap: encap}
	if seg <= encap+ihl+header.TCPMinLen || len(payload) <= seg {
		return r, false
	}
	first := payload[:seg]
	in := first[encap:]
	if in[0] != 0x45 || header.IPv4(in).TotalLen() != len(in) || in[header.IPv4Protocol] != header.ProtoTCP || header.IPv4(in).IsFragment() {
		return r, false
	}
	tcp := header.TCP(in[ihl:])
	r.thl = tcp.HeaderLen()
	r.mss = len(in) - ihl - r.thl
	f := tcp.Flags()
	r.flags = f
	f &^= header.TCPFlagPSH
	if r.thl < header.TCPMinLen || r.mss <= 0 || f&header.TCPFlagACK == 0 ||
		f&(header.TCPFlagSYN|header.TCPFlagRST|header.TCPFlagURG|header.TCPFlagCWR|header.TCPFlagFIN) != 0 {
		return r, false
	}
	hl := encap + ihl + r.thl
	seq := tcp.SeqNum()
	for off := 0; off < len(payload); off += seg {
		s := payload[off:min(off+seg, len(payload))]
		if len(s) <= hl {
			return r, false
		}
		if off > 0 {
			i := s[encap:]
			t := s[encap+ihl:]
			last := off+seg >= len(payload)
			flags := t[header.TCPFlags] &^ header.TCPFlagPSH
			if last {
				flags &^= header.TCPFlagFIN
			}
			// The tunnel header; IPv4 version to TOS, flags to protocol,
			// addresses; ports; acknowledgement to window but the flags;
			// urgent pointer and options.
			if !bytes.Equal(s[:encap], first[:encap]) ||
				i[0] != in[0] || i[1] != in[1] || !bytes.Equal(i[6:10], in[6:10]) || !bytes.Equal(i[12:ihl], in[12:ihl]) ||
				header.IPv4(i).TotalLen() != len(i) ||
				!bytes.Equal(t[:4], tcp[:4]) || !bytes.Equal(t[8:13], tcp[8:13]) || flags != f ||
				!bytes.Equal(t[14:16], tcp[14:16]) || !bytes.Equal(t[18:r.thl], tcp[18:r.thl]) ||
				header.TCP(t).SeqNum() != seq {
				return r, false
			}
			r.flags |= t[header.TCPFlags]
		}
		r.n++
		r.bytes += len(s) - encap
		seq += uint32(r.mss)
	}
	return r, true
}

// build rebuilds the run in payload in place into one super-packet: the
// first segment's headers, every payload after them, the IPv4 length and
// checksum fixed, the last segment's flags, and the TCP checksum field
// holding the pseudo-header sum. It returns the super-packet's end in
// payload; it starts at r.encap.
func (r *tcpRun) build(payload []byte, seg int) int {
	const ihl = header.IPv4MinLen
	hl := r.encap + ihl + r.thl
	at := seg
	for off := seg; off < len(payload); off += seg {
		at += copy(payload[at:], payload[off+hl:min(off+seg, len(payload))])
	}
	in := payload[r.encap:at]
	ip := header.IPv4(in)
	ip.SetTotalLen(len(in))
	ip.UpdateChecksum()
	tcp := header.TCP(in[ihl:])
	tcp.SetFlags(r.flags)
	tcp.SetChecksum(header.Fold(header.PseudoSum(ip.Addrs(), header.ProtoTCP, len(in)-ihl)))
	return at
}

// virtio writes in front of the super-packet build made, to vh, the
// virtio-net header that asks the kernel to segment it (TCP over IPv4) and
// complete the checksum.
func (r *tcpRun) virtio(vh header.VirtioNet) {
	vh.Encode(&header.VirtioNetFields{
		Flags:      header.VirtioNetFlagNeedsCsum,
		GSOType:    header.VirtioNetGSOTCPv4,
		HdrLen:     uint16(header.IPv4MinLen + r.thl),
		GSOSize:    uint16(r.mss),
		CsumStart:  header.IPv4MinLen,
		CsumOffset: header.TCPChecksum,
	})
}

// fastRx reports whether the tunnel's received super-packets may go to
// its device whole: a point-to-point IP tunnel, nobody capturing, no MSS
// clamping, a device that takes them.
func (t *Tunnel) fastRx() (gsoDevice, bool) {
	d, ok := t.dev.(gsoDevice)
	if !ok || t.nb != nil || t.ethernet || t.peer == nil || t.tap.Load() != nil || t.clampMSS() != 0 || !d.CanWriteGSO() {
		return nil, false
	}
	return d, true
}

// wholeGRO is the socket's answer to ReadBatchGRO: keep the coalesced
// datagram pkt whole when its tunnel's fast path takes it (see
// receiveWhole). It runs in the receiving goroutine.
func (s *socket) wholeGRO(pkt []byte, seg int) bool {
	t, _, ok := s.wholeRun(pkt, seg, &s.wp)
	if !ok {
		return false
	}
	_, ok = t.fastRx()
	return ok
}

// wholeRun parses the first segment of the datagram pkt into p and finds
// its tunnel (nil if none) and the run its payload is: what wholeGRO
// decides by, and what receiveWhole works from.
func (s *socket) wholeRun(pkt []byte, seg int, p *decap.Packet) (*Tunnel, tcpRun, bool) {
	at := udpAt(pkt)
	hl := at + header.UDPLen
	if at < 0 || len(pkt) <= hl+seg || s.parse(pkt[:hl+seg], p) != decap.OK ||
		p.Kind != decap.Data || p.Type != header.EtherTypeIPv4 || p.GREFlags&(header.GREFlagCsum|header.GREFlagSeq) != 0 {
		return nil, tcpRun{}, false
	}
	t := s.e.lookup(packetKey(p))
	if t == nil {
		return nil, tcpRun{}, false
	}
	r, ok := tcpRunOf(pkt[hl:], seg, p.Start-hl)
	return t, r, ok
}

// receiveWhole delivers a datagram the underlay kept whole (wholeGRO said
// so, in this goroutine, a moment ago): each segment passes the tunnel's
// receive policy as the segment path would pass it (decap.Receiver.Accept;
// the segments carry one GRE header, without sequence number, so they
// fare alike), ECN is decapsulated once for the headers kept, and the
// rebuilt super-packet is written to the device. Counters count segments,
// as the segment path does.
func (s *socket) receiveWhole(buf []byte, size, seg int, p *decap.Packet) {
	pkt := buf[:size]
	t, r, ok := s.wholeRun(pkt, seg, p)
	var pr *peer
	if ok {
		pr = t.peerFrom(p)
	}
	if pr == nil {
		// The tunnel went, or changed, since wholeGRO said yes.
		for range (size - udpAt(pkt) - header.UDPLen + seg - 1) / seg {
			s.e.unmatched.drop(decap.NoTunnel)
		}
		return
	}
	refused := false
	for range r.n {
		if why := pr.recv.Load().Accept(p); why != decap.OK {
			t.counters.drop(why)
			refused = true
		}
	}
	if refused {
		return
	}
	hl := p.Start - r.encap
	if !decap.DecapECN(pkt[p.Start:hl+seg], p.TOS) {
		for range r.n {
			t.counters.drop(decap.InnerNotECT)
		}
		return
	}
	end := hl + r.build(pkt[hl:], seg)
	r.virtio(header.VirtioNet(buf[p.Start-header.VirtioNetHeaderLen : p.Start]))
	err := errNoGSO
	if d, ok := t.dev.(gsoDevice); ok {
		s.one[0] = buf[p.Start-t.headroom : end]
		_, err = d.WriteGSO(s.one[:], t.headroom)
		s.one[0] = nil
	}
	t.countDelivered(uint64(r.n), uint64(r.bytes), err)
}

var errNoGSO = errors.New("the device takes no super-packets")
