package header

import "encoding/binary"

// IP protocol numbers of the IPv6 extension headers (RFC 8200 §4, IANA
// "Assigned Internet Protocol Numbers" keywords) and of the IPsec headers
// that may follow them.
const (
	ProtoHopOpts    = 0  // HOPOPT: Hop-by-Hop Options
	ProtoIPv6Route  = 43 // Routing
	ProtoIPv6Frag   = 44 // Fragment
	ProtoESP        = 50 // Encapsulating Security Payload (RFC 4303)
	ProtoAH         = 51 // Authentication Header (RFC 4302)
	ProtoIPv6NoNext = 59 // No Next Header
	ProtoIPv6Opts   = 60 // Destination Options
)

// IPv6 Fragment header, RFC 8200 §4.5:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Identification                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Hop-by-Hop, Routing and Destination Options headers (§4.3-4.6) share
// their first two bytes: Next Header, then Hdr Ext Len in 8-byte units
// not counting the first 8; AH (RFC 4302 §2.2) has Payload Len in 4-byte
// units minus 2 there instead.
const (
	IPv6ExtNextHeader = 0 // first byte of every extension header
	IPv6ExtLen        = 1 // Hdr Ext Len (AH: Payload Len)
	IPv6FragOffset    = 2 // 16 bits: the offset in 8-byte units, shifted left by 3
	IPv6FragHeaderLen = 8
)

// IPv6Fields are the fields of an IPv6 fixed header, for Encode.
type IPv6Fields struct {
	TrafficClass uint8
	FlowLabel    uint32 // 20 bits
	PayloadLen   uint16
	NextHeader   uint8
	HopLimit     uint8
	Src, Dst     [16]byte
}

// Encode writes the 40-byte fixed header from f.
func (b IPv6) Encode(f *IPv6Fields) {
	_ = b[IPv6HeaderLen-1]
	binary.BigEndian.PutUint32(b, 6<<28|uint32(f.TrafficClass)<<20|f.FlowLabel&0xfffff)
	binary.BigEndian.PutUint16(b[IPv6PayloadLen:], f.PayloadLen)
	b[IPv6NextHeader] = f.NextHeader
	b[IPv6HopLimit] = f.HopLimit
	copy(b[IPv6Src:IPv6Src+16], f.Src[:])
	copy(b[IPv6Dst:IPv6Dst+16], f.Dst[:])
}

// SetPayloadLen writes the Payload Length: the bytes after the fixed
// header, extension headers included.
func (b IPv6) SetPayloadLen(n int) { binary.BigEndian.PutUint16(b[IPv6PayloadLen:], uint16(n)) }

// Addrs is the source and destination address, contiguous, as PseudoSum
// takes them; it aliases b.
func (b IPv6) Addrs() []byte { return b[IPv6Src : IPv6Dst+16] }
