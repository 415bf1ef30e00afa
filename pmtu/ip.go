package pmtu

import "github.com/gretun/gretun/header"

// ipv4 validates the IPv4 header at the start of p and returns the
// header length and the packet trimmed to its Total Length. ok is false
// when the header is not a well-formed IPv4 header within p.
func ipv4(p []byte) (pkt header.IPv4, ihl int, ok bool) {
	ip := header.IPv4(p)
	if len(ip) < header.IPv4MinLen || ip.Version() != 4 {
		return nil, 0, false
	}
	ihl, total := ip.HeaderLen(), ip.TotalLen()
	if ihl < header.IPv4MinLen || total < ihl || total > len(p) {
		return nil, 0, false
	}
	return ip[:total], ihl, true
}

// ipv6 validates the fixed IPv6 header at the start of p and returns
// the packet trimmed to its Payload Length. A zero Payload Length (a
// jumbogram, RFC 2675) is refused: it never crosses a tunnel.
func ipv6(p []byte) (pkt header.IPv6, ok bool) {
	ip := header.IPv6(p)
	if !ip.IsValid() {
		return nil, false
	}
	plen := ip.PayloadLen()
	if plen == 0 || header.IPv6HeaderLen+plen > len(p) {
		return nil, false
	}
	return ip[:header.IPv6HeaderLen+plen], true
}

// upper walks the IPv6 extension header chain of pkt (a packet already
// checked by ipv6) and returns the upper-layer protocol and its offset.
// first is false when a Fragment header with a non-zero offset is found:
// the bytes after it are the middle of someone else's payload, not a
// header. ok is false when the chain runs past the end of pkt.
//
// ESP (whose next header is encrypted) and unknown headers end the walk
// and are returned as the upper layer.
func upper(pkt header.IPv6) (proto uint8, off int, first, ok bool) {
	proto = pkt.NextHeader()
	off = header.IPv6HeaderLen
	for {
		switch proto {
		case header.IPv6HopByHop, header.IPv6Routing, header.IPv6DestOpts:
			// RFC 8200 §4.3-4.6: Hdr Ext Len in 8-octet units, not
			// counting the first 8 octets.
			if off+2 > len(pkt) {
				return 0, 0, false, false
			}
			e := header.IPv6Ext(pkt[off:])
			n := e.Len(proto)
			proto = e.NextHeader()
			off += n
		case header.ProtoAH:
			// RFC 4302 §2.2: Payload Len in 4-octet units, minus 2.
			if off+2 > len(pkt) {
				return 0, 0, false, false
			}
			e := header.IPv6Ext(pkt[off:])
			proto = e.NextHeader()
			off += e.AHLen()
		case header.IPv6Fragment:
			// RFC 8200 §4.5: fixed 8 octets, offset in the top 13 bits
			// of octets 2-3.
			if off+header.IPv6FragmentLen > len(pkt) {
				return 0, 0, false, false
			}
			e := header.IPv6Ext(pkt[off:])
			proto = e.NextHeader()
			if e.FragmentOffset() != 0 {
				return proto, off + header.IPv6FragmentLen, false, true
			}
			off += header.IPv6FragmentLen
		default:
			if off > len(pkt) {
				return 0, 0, false, false
			}
			return proto, off, true, true
		}
	}
}
