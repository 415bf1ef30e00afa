package pmtu

import "encoding/binary"

// Byte offsets in the IPv4 header (RFC 791 §3.1).
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	v4TOS      = 1
	v4TotalLen = 2
	v4ID       = 4
	v4Frag     = 6
	v4TTL      = 8
	v4Protocol = 9
	v4Checksum = 10
	v4Src      = 12
	v4Dst      = 16
	v4MinLen   = 20

	v4FlagDF      = 0x4000
	v4FlagMF      = 0x2000
	v4OffsetMask  = 0x1fff
	protoICMP     = 1
	protoTCP      = 6
	protoICMPv6   = 58
	v6HopByHop    = 0
	v6Routing     = 43
	v6Fragment    = 44
	v6ESP         = 50
	v6AH          = 51
	v6NoNext      = 59
	v6DestOptions = 60
)

// Byte offsets in the IPv6 header (RFC 8200 §3).
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Source Address (16 bytes)                     |
//	|               Destination Address (16 bytes)                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	v6PayloadLen = 4
	v6NextHeader = 6
	v6HopLimit   = 7
	v6Src        = 8
	v6Dst        = 24
	v6HeaderLen  = 40
)

// ipv4 validates the IPv4 header at the start of p and returns the
// header length and the packet trimmed to its Total Length. ok is false
// when the header is not a well-formed IPv4 header within p.
func ipv4(p []byte) (pkt []byte, ihl int, ok bool) {
	if len(p) < v4MinLen || p[0]>>4 != 4 {
		return nil, 0, false
	}
	ihl = int(p[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(p[v4TotalLen:]))
	if ihl < v4MinLen || total < ihl || total > len(p) {
		return nil, 0, false
	}
	return p[:total], ihl, true
}

// ipv6 validates the fixed IPv6 header at the start of p and returns
// the packet trimmed to its Payload Length. A zero Payload Length (a
// jumbogram, RFC 2675) is refused: it never crosses a tunnel.
func ipv6(p []byte) (pkt []byte, ok bool) {
	if len(p) < v6HeaderLen || p[0]>>4 != 6 {
		return nil, false
	}
	plen := int(binary.BigEndian.Uint16(p[v6PayloadLen:]))
	if plen == 0 || v6HeaderLen+plen > len(p) {
		return nil, false
	}
	return p[:v6HeaderLen+plen], true
}

// upper walks the IPv6 extension header chain of pkt (a packet already
// checked by ipv6) and returns the upper-layer protocol and its offset.
// first is false when a Fragment header with a non-zero offset is found:
// the bytes after it are the middle of someone else's payload, not a
// header. ok is false when the chain runs past the end of pkt.
//
// ESP (whose next header is encrypted) and unknown headers end the walk
// and are returned as the upper layer.
func upper(pkt []byte) (proto uint8, off int, first, ok bool) {
	proto = pkt[v6NextHeader]
	off = v6HeaderLen
	for {
		switch proto {
		case v6HopByHop, v6Routing, v6DestOptions:
			// RFC 8200 §4.3-4.6: Hdr Ext Len in 8-octet units, not
			// counting the first 8 octets.
			if off+2 > len(pkt) {
				return 0, 0, false, false
			}
			n := (int(pkt[off+1]) + 1) * 8
			proto = pkt[off]
			off += n
		case v6AH:
			// RFC 4302 §2.2: Payload Len in 4-octet units, minus 2.
			if off+2 > len(pkt) {
				return 0, 0, false, false
			}
			n := (int(pkt[off+1]) + 2) * 4
			proto = pkt[off]
			off += n
		case v6Fragment:
			// RFC 8200 §4.5: fixed 8 octets, offset in the top 13 bits
			// of octets 2-3.
			if off+8 > len(pkt) {
				return 0, 0, false, false
			}
			proto = pkt[off]
			if binary.BigEndian.Uint16(pkt[off+2:])>>3 != 0 {
				return proto, off + 8, false, true
			}
			off += 8
		default:
			if off > len(pkt) {
				return 0, 0, false, false
			}
			return proto, off, true, true
		}
	}
}
