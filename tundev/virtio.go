package tundev

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gretun/gretun/header"
	"golang.zx2c4.com/wireguard/tun"
)

// VirtioHdrLen is the size of the virtio-net header (struct virtio_net_hdr
// in include/uapi/linux/virtio_net.h) in front of every packet read from or
// written to a TUN device opened with IFF_VNET_HDR.
const VirtioHdrLen = 10

// Values of the virtio-net header (include/uapi/linux/virtio_net.h).
const (
	flagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM: CHECKSUM_PARTIAL

	gsoNone  = 0 // VIRTIO_NET_HDR_GSO_NONE
	gsoTCPv4 = 1 // VIRTIO_NET_HDR_GSO_TCPV4
	gsoTCPv6 = 4 // VIRTIO_NET_HDR_GSO_TCPV6
	gsoUDPL4 = 5 // VIRTIO_NET_HDR_GSO_UDP_L4
)

const (
	protoTCP = 6
	protoUDP = 17

	tcpFIN = 0x01
	tcpPSH = 0x08
	tcpCWR = 0x80
)

// virtioHdr is the decoded virtio-net header. The kernel writes it in host
// byte order, as legacy virtio does, unless TUNSETVNETLE or TUNSETVNETBE asks
// otherwise (gretun never does).
type virtioHdr struct {
	flags      uint8
	gsoType    uint8
	hdrLen     uint16
	gsoSize    uint16
	csumStart  uint16
	csumOffset uint16
}

func decodeVirtio(b []byte) virtioHdr {
	return virtioHdr{
		flags:      b[0],
		gsoType:    b[1],
		hdrLen:     binary.NativeEndian.Uint16(b[2:]),
		gsoSize:    binary.NativeEndian.Uint16(b[4:]),
		csumStart:  binary.NativeEndian.Uint16(b[6:]),
		csumOffset: binary.NativeEndian.Uint16(b[8:]),
	}
}

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
	h := decodeVirtio(in)
	pkt := in[VirtioHdrLen:]
	if h.gsoType == gsoNone {
		if h.flags&flagNeedsCsum != 0 {
			if err := finishChecksum(pkt, int(h.csumStart), int(h.csumOffset)); err != nil {
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

// segment is split for a GSO packet.
func segment(pkt []byte, h virtioHdr, bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(pkt) == 0 {
		return 0, fmt.Errorf("%w: empty GSO packet", errMalformed)
	}
	v6 := pkt[0]>>4 == 6
	var proto uint8
	switch {
	case h.gsoType == gsoTCPv4 && pkt[0]>>4 == 4, h.gsoType == gsoTCPv6 && v6:
		proto = protoTCP
	case h.gsoType == gsoUDPL4 && (v6 || pkt[0]>>4 == 4):
		proto = protoUDP
	default:
		return 0, fmt.Errorf("%w: GSO type %d on IP version %d", errMalformed, h.gsoType, pkt[0]>>4)
	}
	// The transport header starts at csumStart. Its length comes from the
	// packet, not from hdrLen, which the kernel may set to a whole first
	// segment on the forwarding path.
	ipLen := int(h.csumStart)
	minIP := header.IPv4MinLen
	if v6 {
		minIP = header.IPv6HeaderLen
	}
	if ipLen < minIP || ipLen+20 > len(pkt) || !v6 && header.IPv4(pkt).HeaderLen() != ipLen {
		return 0, fmt.Errorf("%w: transport header at %d in %d bytes", errMalformed, ipLen, len(pkt))
	}
	addrs := pkt[12:20] // source and destination, as the pseudo-header sums them
	if v6 {
		addrs = pkt[8:40]
	}
	l4Len := 8
	if proto == protoTCP {
		l4Len = int(pkt[ipLen+12]>>4) * 4
		if l4Len < 20 {
			return 0, fmt.Errorf("%w: TCP header of %d bytes", errMalformed, l4Len)
		}
	}
	hdrLen := ipLen + l4Len
	mss := int(h.gsoSize)
	if hdrLen > len(pkt) || mss == 0 {
		return 0, fmt.Errorf("%w: headers of %d bytes, segments of %d, in %d bytes", errMalformed, hdrLen, mss, len(pkt))
	}
	hdrs, payload := pkt[:hdrLen], pkt[hdrLen:]
	var seq uint32
	if proto == protoTCP {
		seq = binary.BigEndian.Uint32(hdrs[ipLen+4:])
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
			binary.BigEndian.PutUint16(out[4:], uint16(total-header.IPv6HeaderLen))
		} else {
			ip := header.IPv4(out)
			ip.SetTotalLen(total)
			ip.SetID(ip.ID() + uint16(n))
			ip.UpdateChecksum()
		}
		l4 := out[ipLen:]
		csumAt := 16
		if proto == protoTCP {
			binary.BigEndian.PutUint32(l4[4:], seq+uint32(start))
			if end < len(payload) {
				l4[13] &^= tcpFIN | tcpPSH
			}
			if n > 0 {
				l4[13] &^= tcpCWR
			}
		} else {
			binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
			csumAt = 6
		}
		l4[csumAt], l4[csumAt+1] = 0, 0
		sum := header.Fold(header.Sum(l4, header.PseudoSum(addrs, proto, len(l4))))
		if proto == protoUDP && sum == 0 {
			sum = 0xffff // RFC 768: a computed zero is sent as all ones
		}
		binary.BigEndian.PutUint16(l4[csumAt:], sum)
		sizes[n] = total
		n++
	}
	return n, nil
}
