package tundev

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gretun/gretun/header"
	"golang.zx2c4.com/wireguard/tun"
)

// VirtioHdrLen is the size of the virtio-net header (header.VirtioNet) in
// front of every packet read from or written to a TUN device opened with
// IFF_VNET_HDR.
const VirtioHdrLen = header.VirtioNetHeaderLen

// errMalformed wraps every refusal of what the kernel handed us: the
// caller counts the packet as a read error and goes on.
var errMalformed = errors.New("tundev: malformed packet from the TUN device")

// finishChecksum completes a CHECKSUM_PARTIAL packet: the kernel left the
// pseudo-header sum at start+offset and expects the sum of everything from
// start on to be folded into it.
func finishChecksum(pkt []byte, start, offset int) error {
	at := start + offset
	if start >= len(pkt) || at+2 > len(pkt) {
		return fmt.Errorf("%w: checksum at %d+%d in %d bytes", errMalformed, start, offset, len(pkt))
	}
	partial := binary.BigEndian.Uint16(pkt[at:])
	pkt[at], pkt[at+1] = 0, 0
	binary.BigEndian.PutUint16(pkt[at:], header.Fold(header.Sum(pkt[start:], uint64(partial))))
	return nil
}

// split cuts the super-packet in (virtio header first) into packets of at
// most one segment each, written to bufs[i][offset:] with their lengths in
// sizes, as the kernel's own TCP and UDP segmentation would (tcp_gso_segment,
// __udp_gso_segment): headers copied, IPv4 ID counted up, lengths, sequence
// numbers and checksums rewritten, FIN, PSH and CWR kept where the kernel
// keeps them. It returns how many packets it wrote; with more segments than
// bufs, it writes what fits and returns tun.ErrTooManySegments.
func split(in []byte, bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(in) <= VirtioHdrLen || len(bufs) == 0 {
		return 0, fmt.Errorf("%w: %d bytes", errMalformed, len(in))
	}
	h := header.VirtioNet(in)
	pkt := in[VirtioHdrLen:]
	if h.GSOType() == header.VirtioNetGSONone {
		if h.Flags()&header.VirtioNetFlagNeedsCsum != 0 {
			if err := finishChecksum(pkt, int(h.CsumStart()), int(h.CsumOffset())); err != nil {
				return 0, err
			}
		}
		if len(pkt) > len(bufs[0])-offset {
			return 0, fmt.Errorf("%w: %d-byte packet, %d-byte buffer", errMalformed, len(pkt), len(bufs[0])-offset)
		}
		sizes[0] = copy(bufs[0][offset:], pkt)
		return 1, nil
	}
	return segment(pkt, h, bufs, sizes, offset)
}

// maxL2 is the longest link-layer header splitFrame takes: Ethernet and two
// VLAN tags (802.1ad outside 802.1Q).
const maxL2 = header.EthernetHeaderLen + 2*header.VLANTagLen

// splitFrame is split for a TAP's frame (in: virtio header first): a
// super-frame's IP packet, after the Ethernet header and up to two VLAN
// tags, is segmented as a TUN's super-packet, and each segment gets the
// frame's link-layer header in front. The checksum offset of an ordinary
// frame is the frame's own, so split takes it as it is.
func splitFrame(in []byte, bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(in) <= VirtioHdrLen || header.VirtioNet(in).GSOType() == header.VirtioNetGSONone {
		return split(in, bufs, sizes, offset)
	}
	frame := in[VirtioHdrLen:]
	l2 := header.FramedIPAt(frame)
	var h [VirtioHdrLen]byte
	copy(h[:], in)
	hv := header.VirtioNet(h[:])
	if l2 == 0 || int(hv.CsumStart()) < l2 {
		return 0, fmt.Errorf("%w: GSO frame without an IP packet after its Ethernet header", errMalformed)
	}
	binary.NativeEndian.PutUint16(h[header.VirtioNetCsumStart:], hv.CsumStart()-uint16(l2))
	n, err := segment(frame[l2:], hv, bufs, sizes, offset+l2)
	for i := range n {
		copy(bufs[i][offset:], frame[:l2])
		sizes[i] += l2
	}
	return n, err
}

// segment is split for a GSO packet; h is its virtio-net header.
func segment(pkt []byte, h header.VirtioNet, bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(pkt) == 0 {
		return 0, fmt.Errorf("%w: empty GSO packet", errMalformed)
	}
	version := header.IPVersion(pkt)
	v6 := version == 6
	var proto uint8
	switch {
	case h.GSOType() == header.VirtioNetGSOTCPv4 && version == 4, h.GSOType() == header.VirtioNetGSOTCPv6 && v6:
		proto = header.ProtoTCP
	case h.GSOType() == header.VirtioNetGSOUDPL4 && (v6 || version == 4):
		proto = header.ProtoUDP
	default:
		return 0, fmt.Errorf("%w: GSO type %d on IP version %d", errMalformed, h.GSOType(), version)
	}
	// The transport header starts at csumStart. Its length comes from the
	// packet, not from hdrLen, which the kernel may set to a whole first
	// segment on the forwarding path.
	ipLen := int(h.CsumStart())
	minIP := header.IPv4MinLen
	if v6 {
		minIP = header.IPv6HeaderLen
	}
	if ipLen < minIP || ipLen+header.TCPMinLen > len(pkt) || !v6 && header.IPv4(pkt).HeaderLen() != ipLen {
		return 0, fmt.Errorf("%w: transport header at %d in %d bytes", errMalformed, ipLen, len(pkt))
	}
	var addrs []byte // source and destination, as the pseudo-header sums them
	if v6 {
		addrs = header.IPv6(pkt).Addrs()
	} else {
		addrs = header.IPv4(pkt).Addrs()
	}
	l4Len := header.UDPLen
	if proto == header.ProtoTCP {
		l4Len = header.TCP(pkt[ipLen:]).HeaderLen()
		if l4Len < header.TCPMinLen {
			return 0, fmt.Errorf("%w: TCP header of %d bytes", errMalformed, l4Len)
		}
	}
	hdrLen := ipLen + l4Len
	mss := int(h.GSOSize())
	if hdrLen > len(pkt) || mss == 0 {
		return 0, fmt.Errorf("%w: headers of %d bytes, segments of %d, in %d bytes", errMalformed, hdrLen, mss, len(pkt))
	}
	hdrs, payload := pkt[:hdrLen], pkt[hdrLen:]
	var seq uint32
	if proto == header.ProtoTCP {
		seq = header.TCP(hdrs[ipLen:]).SeqNum()
	}
	n := 0
	for start := 0; start < len(payload); start += mss {
		if n == len(bufs) {
			return n, tun.ErrTooManySegments
		}
		end := min(start+mss, len(payload))
		total := hdrLen + end - start
		if total > len(bufs[n])-offset {
			return n, fmt.Errorf("%w: %d-byte segment, %d-byte buffer", errMalformed, total, len(bufs[n])-offset)
		}
		out := bufs[n][offset : offset+total]
		copy(out, hdrs)
		copy(out[hdrLen:], payload[start:end])
		if v6 {
			header.IPv6(out).SetPayloadLen(total - header.IPv6HeaderLen)
		} else {
			ip := header.IPv4(out)
			ip.SetTotalLen(total)
			ip.SetID(ip.ID() + uint16(n))
			ip.UpdateChecksum()
		}
		l4 := out[ipLen:]
		csumAt := header.TCPChecksum
		if proto == header.ProtoTCP {
			tcp := header.TCP(l4)
			tcp.SetSeqNum(seq + uint32(start))
			if end < len(payload) {
				tcp.SetFlags(tcp.Flags() &^ (header.TCPFlagFIN | header.TCPFlagPSH))
			}
			if n > 0 {
				tcp.SetFlags(tcp.Flags() &^ header.TCPFlagCWR)
			}
		} else {
			header.UDP(l4).SetLength(len(l4))
			csumAt = header.UDPChecksum
		}
		l4[csumAt], l4[csumAt+1] = 0, 0
		sum := header.Fold(header.Sum(l4, header.PseudoSum(addrs, proto, len(l4))))
		if proto == header.ProtoUDP && sum == 0 {
			sum = 0xffff // RFC 768: a computed zero is sent as all ones
		}
		binary.BigEndian.PutUint16(l4[csumAt:], sum)
		sizes[n] = total
		n++
	}
	return n, nil
}
