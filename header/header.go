// Package header gives byte-slice views of the IPv4, IPv6 and GRE headers
// that gretun writes and reads, with offset constants under the RFC field
// diagrams. Views never copy and never allocate; callers check lengths
// (IsValid or explicit bounds) before using accessors, as in gVisor's
// tcpip/header.
//
// RFC 791 (IPv4), RFC 8200 (IPv6), RFC 2784 and RFC 2890 (GRE),
// RFC 2003 (IP in IP), RFC 1071 (checksum).
package header

import "encoding/binary"

// IPv4 header, RFC 791 section 3.1:
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
	IPv4VersIHL    = 0
	IPv4TOS        = 1
	IPv4TotalLen   = 2
	IPv4ID         = 4
	IPv4FlagsFrag  = 6
	IPv4TTL        = 8
	IPv4Protocol   = 9
	IPv4Checksum   = 10
	IPv4Src        = 12
	IPv4Dst        = 16
	IPv4MinLen     = 20
	IPv4MaxLen     = 60
	IPv4MaxPacket  = 65535
	IPv4FlagDF     = 0x4000
	IPv4FlagMF     = 0x2000
	IPv4FragOffset = 0x1fff

	// ProtoICMP, ProtoIPIP, ProtoTCP, ProtoUDP, ProtoGRE, ProtoICMPv6 are IP protocol numbers.
	ProtoICMP   = 1
	ProtoIPIP   = 4
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoIPv6   = 41
	ProtoGRE    = 47
	ProtoICMPv6 = 58

	// ECNMask selects the two ECN bits of the TOS / traffic class byte (RFC 3168).
	ECNMask = 0x03
)

// IPv4 is a view of an IPv4 header followed by its payload.
type IPv4 []byte

// IsValid reports whether b holds at least a whole header as its IHL says.
func (b IPv4) IsValid() bool {
	return len(b) >= IPv4MinLen && b.Version() == 4 && b.HeaderLen() >= IPv4MinLen && b.HeaderLen() <= len(b)
}

func (b IPv4) Version() uint8        { return b[IPv4VersIHL] >> 4 }
func (b IPv4) HeaderLen() int        { return int(b[IPv4VersIHL]&0x0f) * 4 }
func (b IPv4) TOS() uint8            { return b[IPv4TOS] }
func (b IPv4) TotalLen() int         { return int(binary.BigEndian.Uint16(b[IPv4TotalLen:])) }
func (b IPv4) ID() uint16            { return binary.BigEndian.Uint16(b[IPv4ID:]) }
func (b IPv4) FlagsFrag() uint16     { return binary.BigEndian.Uint16(b[IPv4FlagsFrag:]) }
func (b IPv4) DF() bool              { return b.FlagsFrag()&IPv4FlagDF != 0 }
func (b IPv4) MoreFragments() bool   { return b.FlagsFrag()&IPv4FlagMF != 0 }
func (b IPv4) FragmentOffset() int   { return int(b.FlagsFrag()&IPv4FragOffset) * 8 }
func (b IPv4) IsFragment() bool      { return b.FlagsFrag()&(IPv4FlagMF|IPv4FragOffset) != 0 }
func (b IPv4) TTL() uint8            { return b[IPv4TTL] }
func (b IPv4) Protocol() uint8       { return b[IPv4Protocol] }
func (b IPv4) Checksum() uint16      { return binary.BigEndian.Uint16(b[IPv4Checksum:]) }
func (b IPv4) Src() [4]byte          { return [4]byte(b[IPv4Src : IPv4Src+4]) }
func (b IPv4) Dst() [4]byte          { return [4]byte(b[IPv4Dst : IPv4Dst+4]) }
func (b IPv4) Payload() []byte       { return b[b.HeaderLen():] }
func (b IPv4) SetTOS(v uint8)        { b[IPv4TOS] = v }
func (b IPv4) SetTotalLen(n int)     { binary.BigEndian.PutUint16(b[IPv4TotalLen:], uint16(n)) }
func (b IPv4) SetID(v uint16)        { binary.BigEndian.PutUint16(b[IPv4ID:], v) }
func (b IPv4) SetFlagsFrag(v uint16) { binary.BigEndian.PutUint16(b[IPv4FlagsFrag:], v) }
func (b IPv4) SetTTL(v uint8)        { b[IPv4TTL] = v }
func (b IPv4) SetChecksum(v uint16)  { binary.BigEndian.PutUint16(b[IPv4Checksum:], v) }

// ComputeChecksum returns the header checksum over the header as IHL says,
// with the checksum field taken as zero.
func (b IPv4) ComputeChecksum() uint16 {
	h := b[:b.HeaderLen()]
	sum := Sum(h[:IPv4Checksum], 0)
	return Fold(Sum(h[IPv4Checksum+2:], sum))
}

// UpdateChecksum writes a freshly computed header checksum.
func (b IPv4) UpdateChecksum() { b.SetChecksum(b.ComputeChecksum()) }

// ChecksumValid reports whether the header checksum verifies.
func (b IPv4) ChecksumValid() bool { return Checksum(b[:b.HeaderLen()]) == 0 }

// IPv6 fixed header, RFC 8200 section 3:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Source Address (16 bytes)                     |
//	|              Destination Address (16 bytes)                   |
const (
	IPv6PayloadLen = 4
	IPv6NextHeader = 6
	IPv6HopLimit   = 7
	IPv6Src        = 8
	IPv6Dst        = 24
	IPv6HeaderLen  = 40
	IPv6MinMTU     = 1280
)

// IPv6 is a view of an IPv6 fixed header followed by its payload.
type IPv6 []byte

// IsValid reports whether b holds at least a whole fixed header of version 6.
func (b IPv6) IsValid() bool { return len(b) >= IPv6HeaderLen && b[0]>>4 == 6 }

func (b IPv6) TrafficClass() uint8 { return b[0]<<4 | b[1]>>4 }
func (b IPv6) PayloadLen() int     { return int(binary.BigEndian.Uint16(b[IPv6PayloadLen:])) }
func (b IPv6) NextHeader() uint8   { return b[IPv6NextHeader] }
func (b IPv6) HopLimit() uint8     { return b[IPv6HopLimit] }
func (b IPv6) Src() [16]byte       { return [16]byte(b[IPv6Src : IPv6Src+16]) }
func (b IPv6) Dst() [16]byte       { return [16]byte(b[IPv6Dst : IPv6Dst+16]) }

// GRE header, RFC 2784 section 2.1 with the key and sequence number of
// RFC 2890 section 2:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|C| |K|S| Reserved0       | Ver |         Protocol Type         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      Checksum (optional)      |       Reserved1 (Optional)    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Key (optional)                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Sequence Number (optional)                    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The optional fields appear in this order, each only when its flag is set.
const (
	GREFlags     = 0
	GREProtocol  = 2
	GREMinLen    = 4
	GREMaxLen    = 16
	GREFlagCsum  = 0x8000
	GREFlagRoute = 0x4000 // RFC 1701 routing present; reserved (must be 0) in RFC 2784
	GREFlagKey   = 0x2000
	GREFlagSeq   = 0x1000
	GREVersion   = 0x0007
	GREReserved0 = 0x0ff8 // strict source route, recursion control and flags of RFC 1701
	// GREReserved0Drop are the Reserved0 bits (4 and 5) for which RFC 2784
	// section 2.3 says to discard a packet, as for GREFlagRoute (bit 1).
	// Bits 6-12 must be sent as zero but ignored on receipt.
	GREReserved0Drop = 0x0c00
	GREVersionPPTP   = 1 // RFC 2637 enhanced GRE

	// EtherType values carried in the GRE protocol type field.
	EtherTypeIPv4      = 0x0800
	EtherTypeIPv6      = 0x86DD
	EtherTypeKeepalive = 0x0000 // Cisco keepalive reply: GRE with protocol type 0
)

// GRE is a view of a GRE header followed by its payload.
type GRE []byte

func (g GRE) Flags() uint16    { return binary.BigEndian.Uint16(g[GREFlags:]) }
func (g GRE) Version() uint16  { return g.Flags() & GREVersion }
func (g GRE) Protocol() uint16 { return binary.BigEndian.Uint16(g[GREProtocol:]) }

// GREFlagsFor is the flags word (version 0) of a GRE header with the
// given optional fields.
func GREFlagsFor(csum, key, seq bool) uint16 {
	var flags uint16
	if csum {
		flags |= GREFlagCsum
	}
	if key {
		flags |= GREFlagKey
	}
	if seq {
		flags |= GREFlagSeq
	}
	return flags
}

// GRELen is the GRE header length that flags announce.
func GRELen(flags uint16) int {
	n := GREMinLen
	if flags&GREFlagCsum != 0 {
		n += 4
	}
	if flags&GREFlagKey != 0 {
		n += 4
	}
	if flags&GREFlagSeq != 0 {
		n += 4
	}
	return n
}

// Len is the header length the view's own flags announce.
func (g GRE) Len() int { return GRELen(g.Flags()) }

// KeyOffset and SeqOffset locate the optional fields for the view's flags.
func (g GRE) KeyOffset() int {
	if g.Flags()&GREFlagCsum != 0 {
		return 8
	}
	return 4
}

func (g GRE) SeqOffset() int {
	off := g.KeyOffset()
	if g.Flags()&GREFlagKey != 0 {
		off += 4
	}
	return off
}

func (g GRE) Checksum() uint16 { return binary.BigEndian.Uint16(g[4:]) }
func (g GRE) Key() uint32      { return binary.BigEndian.Uint32(g[g.KeyOffset():]) }
func (g GRE) Seq() uint32      { return binary.BigEndian.Uint32(g[g.SeqOffset():]) }

// InnerVersionEtherType maps the version nibble of an IP packet to the GRE
// protocol type that carries it, or 0 when it is neither IPv4 nor IPv6.
func InnerVersionEtherType(firstByte byte) uint16 {
	switch firstByte >> 4 {
	case 4:
		return EtherTypeIPv4
	case 6:
		return EtherTypeIPv6
	}
	return 0
}
