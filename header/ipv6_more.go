package header

import (
	"encoding/binary"
	"net/netip"
)

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
//
// (The constants, IPv6Ext, IPv6Fields, Encode and SetPayloadLen are the same
// as on the wire branch's ipv6.go; whichever lands second drops its copy.
// ProtoAH, AHLen and Addrs are only here.)
const (
	IPv6HopByHop = 0  // hop-by-hop options
	IPv6Routing  = 43 // routing header
	IPv6Fragment = 44 // fragment header
	IPv6NoNext   = 59 // nothing follows
	IPv6DestOpts = 60 // destination options

	IPv6ExtMinLen      = 8
	IPv6FragmentLen    = 8
	IPv6FragOffsetMask = 0xfff8 // fragment offset in 8-byte units, shifted left by 3

	// ProtoAH is the IPsec Authentication Header (RFC 4302), which may sit
	// among the extension headers but counts its length differently.
	ProtoAH = 51
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

// AHLen is the length in bytes of an Authentication Header: its Payload
// Len counts 4-byte units, minus 2 (RFC 4302 section 2.2).
func (e IPv6Ext) AHLen() int { return (int(e[1]) + 2) * 4 }

// FragmentOffset is a Fragment header's offset in bytes.
func (e IPv6Ext) FragmentOffset() int {
	return int(binary.BigEndian.Uint16(e[2:]) & IPv6FragOffsetMask)
}

// IPv6Fields is what IPv6.Encode writes: a fixed header.
type IPv6Fields struct {
	TrafficClass uint8
	FlowLabel    uint32 // low 20 bits
	PayloadLen   uint16
	NextHeader   uint8
	HopLimit     uint8
	Src, Dst     netip.Addr // IPv6 addresses
}

// Encode writes the fixed header from f. b must hold IPv6HeaderLen bytes.
func (b IPv6) Encode(f *IPv6Fields) {
	binary.BigEndian.PutUint32(b, 6<<28|uint32(f.TrafficClass)<<20|f.FlowLabel&0xfffff)
	binary.BigEndian.PutUint16(b[IPv6PayloadLen:], f.PayloadLen)
	b[IPv6NextHeader] = f.NextHeader
	b[IPv6HopLimit] = f.HopLimit
	s, d := f.Src.As16(), f.Dst.As16()
	copy(b[IPv6Src:], s[:])
	copy(b[IPv6Dst:], d[:])
}

// SetPayloadLen writes the Payload Length: the bytes after the fixed
// header, extension headers included.
func (b IPv6) SetPayloadLen(n int) { binary.BigEndian.PutUint16(b[IPv6PayloadLen:], uint16(n)) }

// Addrs is the source and destination address, contiguous, as PseudoSum
// takes them; it aliases b.
func (b IPv6) Addrs() []byte { return b[IPv6Src : IPv6Dst+16] }
