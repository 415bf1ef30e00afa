package header

import (
	"encoding/binary"
	"net/netip"
)

// IPv6 fixed header, RFC 8200 section 3:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Source Address (16 bytes)                     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|              Destination Address (16 bytes)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	IPv6VersTCFlow = 0
	IPv6PayloadLen = 4
	IPv6NextHeader = 6
	IPv6HopLimit   = 7
	IPv6Src        = 8
	IPv6Dst        = 24
	IPv6HeaderLen  = 40
	IPv6MinMTU     = 1280
	IPv6MaxPayload = 65535 // largest payload length without a jumbogram option
)

// IPv6Fields is what IPv6.Encode writes: a fixed header.
type IPv6Fields struct {
	TrafficClass uint8
	FlowLabel    uint32 // low 20 bits
	PayloadLen   uint16
	NextHeader   uint8
	HopLimit     uint8
	Src, Dst     netip.Addr // IPv6 addresses
}

// IPv6 is a view of an IPv6 fixed header followed by its payload.
type IPv6 []byte

// IsValid reports whether b holds at least a whole fixed header of version 6.
func (b IPv6) IsValid() bool { return len(b) >= IPv6HeaderLen && b[0]>>4 == 6 }

// TrafficClass is the traffic class byte: DSCP and the ECN bits (ECNMask).
func (b IPv6) TrafficClass() uint8 { return b[0]<<4 | b[1]>>4 }

// FlowLabel is the 20-bit flow label.
func (b IPv6) FlowLabel() uint32 { return binary.BigEndian.Uint32(b[IPv6VersTCFlow:]) & 0xfffff }

// PayloadLen is the length after the fixed header (extension headers
// included) the header announces; 0 for a jumbogram.
func (b IPv6) PayloadLen() int { return int(binary.BigEndian.Uint16(b[IPv6PayloadLen:])) }

// NextHeader is the type of the first extension header or of the payload.
func (b IPv6) NextHeader() uint8 { return b[IPv6NextHeader] }

// HopLimit is the hop limit, IPv6's TTL.
func (b IPv6) HopLimit() uint8 { return b[IPv6HopLimit] }

// Src is the source address as its sixteen bytes.
func (b IPv6) Src() [16]byte { return [16]byte(b[IPv6Src : IPv6Src+16]) }

// Dst is the destination address as its sixteen bytes.
func (b IPv6) Dst() [16]byte { return [16]byte(b[IPv6Dst : IPv6Dst+16]) }

// SrcAddr is the source address; netip.Addr is a value: nothing is allocated.
func (b IPv6) SrcAddr() netip.Addr { return netip.AddrFrom16(b.Src()) }

// DstAddr is the destination address.
func (b IPv6) DstAddr() netip.Addr { return netip.AddrFrom16(b.Dst()) }

// SetTrafficClass writes the traffic class, keeping version and flow label.
func (b IPv6) SetTrafficClass(v uint8) {
	b[0] = b[0]&0xf0 | v>>4
	b[1] = b[1]&0x0f | v<<4
}

// SetPayloadLen writes the payload length.
func (b IPv6) SetPayloadLen(n int) { binary.BigEndian.PutUint16(b[IPv6PayloadLen:], uint16(n)) }

// SetHopLimit writes the hop limit.
func (b IPv6) SetHopLimit(v uint8) { b[IPv6HopLimit] = v }

// Encode writes the fixed header from f. b must hold IPv6HeaderLen bytes.
func (b IPv6) Encode(f *IPv6Fields) {
	binary.BigEndian.PutUint32(b[IPv6VersTCFlow:], 6<<28|uint32(f.TrafficClass)<<20|f.FlowLabel&0xfffff)
	binary.BigEndian.PutUint16(b[IPv6PayloadLen:], f.PayloadLen)
	b[IPv6NextHeader] = f.NextHeader
	b[IPv6HopLimit] = f.HopLimit
	s, d := f.Src.As16(), f.Dst.As16()
	copy(b[IPv6Src:], s[:])
	copy(b[IPv6Dst:], d[:])
}

// IPv6 extension headers, RFC 8200 section 4. All but the Fragment header
// share this layout, Hdr Ext Len counting 8-octet units after the first 8:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |  Hdr Ext Len  |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                  type-specific data / options                 |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The Fragment header (RFC 8200 section 4.5) is always 8 bytes:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Identification                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	IPv6HopByHop = 0  // hop-by-hop options
	IPv6Routing  = 43 // routing header
	IPv6Fragment = 44 // fragment header
	IPv6NoNext   = 59 // nothing follows
	IPv6DestOpts = 60 // destination options

	IPv6ExtMinLen       = 8
	IPv6FragmentLen     = 8
	IPv6FragOffsetMask  = 0xfff8 // fragment offset in 8-byte units, shifted left by 3
	IPv6FragMoreFlag    = 0x0001
	IPv6OptPad1         = 0 // a one-byte option with no length byte
	IPv6OptPadN         = 1 // padding of any length
	IPv6OptEncapLimit   = 4 // tunnel encapsulation limit, RFC 2473 section 4.1.1
	IPv6OptEncapLimitSz = 1 // its data length
)

// IPv6Ext is a view of an IPv6 extension header followed by what comes after it.
type IPv6Ext []byte

// NextHeader is the type of the header that follows this one.
func (e IPv6Ext) NextHeader() uint8 { return e[0] }

// Len is the header's length in bytes for an extension header of type
// typ: 8 for a Fragment header, (Hdr Ext Len + 1) * 8 for the others.
func (e IPv6Ext) Len(typ uint8) int {
	if typ == IPv6Fragment {
		return IPv6FragmentLen
	}
	return (int(e[1]) + 1) * 8
}

// FragmentOffset is a Fragment header's offset in bytes.
func (e IPv6Ext) FragmentOffset() int {
	return int(binary.BigEndian.Uint16(e[2:]) & IPv6FragOffsetMask)
}

// MoreFragments reports whether a Fragment header's M flag is set.
func (e IPv6Ext) MoreFragments() bool { return binary.BigEndian.Uint16(e[2:])&IPv6FragMoreFlag != 0 }

// Options walks the options of a hop-by-hop or destination options header
// of length n (RFC 8200 section 4.2) and returns the tunnel encapsulation
// limit option (RFC 2473 section 4.1.1) when there is one. It reports ok
// false when an option runs past n, or when an option it does not know
// has action bits (the two high bits of its type) other than "skip": the
// packet must then be discarded.
func (e IPv6Ext) Options(n int) (encapLimit uint8, hasLimit, ok bool) {
	for i := 2; i < n; {
		t := e[i]
		if t == IPv6OptPad1 {
			i++
			continue
		}
		if i+2 > n || i+2+int(e[i+1]) > n {
			return 0, false, false
		}
		switch {
		case t == IPv6OptPadN:
		case t == IPv6OptEncapLimit && e[i+1] == IPv6OptEncapLimitSz:
			encapLimit, hasLimit = e[i+2], true
		case t>>6 != 0:
			return 0, false, false
		}
		i += 2 + int(e[i+1])
	}
	return encapLimit, hasLimit, true
}

// IPv6EncapLimit finds the tunnel encapsulation limit option of an IPv6
// packet — how many more times it may be encapsulated, RFC 2473 section
// 4.1.1 — in a destination options header among its hop-by-hop, routing,
// fragment, authentication and destination options headers, as Linux's
// ip6_tnl_parse_tlv_enc_lim looks for it. It returns the limit and the
// offset of its value in pkt (where an ICMPv6 Parameter Problem about it
// points). found is false when there is none, or when a header runs past
// pkt or a fragment other than the first hides the rest.
func IPv6EncapLimit(pkt []byte) (limit uint8, at int, found bool) {
	if len(pkt) < IPv6HeaderLen {
		return 0, 0, false
	}
	next, off := pkt[IPv6NextHeader], IPv6HeaderLen
	for range 8 {
		if len(pkt)-off < IPv6ExtMinLen {
			return 0, 0, false
		}
		e := IPv6Ext(pkt[off:])
		var n int
		switch next {
		case IPv6HopByHop, IPv6Routing, IPv6DestOpts:
			n = e.Len(next)
		case IPv6Fragment:
			if e.FragmentOffset() != 0 {
				return 0, 0, false
			}
			n = IPv6FragmentLen
		case ProtoAH:
			n = e.AHLen()
		default:
			return 0, 0, false
		}
		if n > len(e) {
			return 0, 0, false
		}
		if next == IPv6DestOpts {
			for i := 2; i+1 < n; {
				if e[i] == IPv6OptPad1 {
					i++
					continue
				}
				if e[i] == IPv6OptEncapLimit && e[i+1] == IPv6OptEncapLimitSz && i+2 < n {
					return e[i+2], off + i + 2, true
				}
				i += 2 + int(e[i+1])
			}
		}
		next, off = e.NextHeader(), off+n
	}
	return 0, 0, false
}

// ProtoAH is the IPsec Authentication Header (RFC 4302), which may sit
// among the IPv6 extension headers but counts its length differently.
const ProtoAH = 51

// AHLen is the length in bytes of an Authentication Header: its Payload
// Len counts 4-byte units, minus 2 (RFC 4302 section 2.2).
func (e IPv6Ext) AHLen() int { return (int(e[1]) + 2) * 4 }

// Addrs is the source and destination address, contiguous, as PseudoSum
// takes them; it aliases b.
func (b IPv6) Addrs() []byte { return b[IPv6Src : IPv6Dst+16] }
