package header

import (
	"encoding/binary"
	"net/netip"
)

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
	IPv4MinLen     = 20    // header without options
	IPv4MaxLen     = 60    // header with the most options IHL can announce
	IPv4MaxPacket  = 65535 // largest total length
	IPv4FlagDF     = 0x4000
	IPv4FlagMF     = 0x2000
	IPv4FragOffset = 0x1fff // fragment offset in 8-byte units

	// ProtoICMP, ProtoIPIP, ProtoTCP, ProtoUDP, ProtoIPv6, ProtoGRE and
	// ProtoICMPv6 are IP protocol numbers (IPv4 protocol, IPv6 next header).
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

// IPv4Fields is what IPv4.Encode writes: a header without options.
type IPv4Fields struct {
	TOS       uint8
	TotalLen  uint16
	ID        uint16
	FlagsFrag uint16 // IPv4FlagDF, IPv4FlagMF and the offset in 8-byte units
	TTL       uint8
	Protocol  uint8
	Src, Dst  netip.Addr // IPv4 addresses
}

// IPv4 is a view of an IPv4 header followed by its payload.
type IPv4 []byte

// IsValid reports whether b holds at least a whole header as its IHL says.
func (b IPv4) IsValid() bool {
	return len(b) >= IPv4MinLen && b.Version() == 4 && b.HeaderLen() >= IPv4MinLen && b.HeaderLen() <= len(b)
}

// Version is the IP version nibble: 4 for a valid header.
func (b IPv4) Version() uint8 { return b[IPv4VersIHL] >> 4 }

// HeaderLen is the header length in bytes that IHL announces, options included.
func (b IPv4) HeaderLen() int { return int(b[IPv4VersIHL]&0x0f) * 4 }

// TOS is the type of service byte: DSCP and the ECN bits (ECNMask).
func (b IPv4) TOS() uint8 { return b[IPv4TOS] }

// TotalLen is the length of header and payload the header announces.
func (b IPv4) TotalLen() int { return int(binary.BigEndian.Uint16(b[IPv4TotalLen:])) }

// ID is the identification that groups the fragments of one datagram.
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b[IPv4ID:]) }

// FlagsFrag is the word of flags and fragment offset, as stored.
func (b IPv4) FlagsFrag() uint16 { return binary.BigEndian.Uint16(b[IPv4FlagsFrag:]) }

// DF reports whether the Don't Fragment flag is set.
func (b IPv4) DF() bool { return b.FlagsFrag()&IPv4FlagDF != 0 }

// MoreFragments reports whether the More Fragments flag is set.
func (b IPv4) MoreFragments() bool { return b.FlagsFrag()&IPv4FlagMF != 0 }

// FragmentOffset is the fragment's offset in bytes.
func (b IPv4) FragmentOffset() int { return int(b.FlagsFrag()&IPv4FragOffset) * 8 }

// IsFragment reports whether the packet is a fragment (MF or an offset):
// a whole datagram with DF is not.
func (b IPv4) IsFragment() bool { return b.FlagsFrag()&(IPv4FlagMF|IPv4FragOffset) != 0 }

// TTL is the time to live.
func (b IPv4) TTL() uint8 { return b[IPv4TTL] }

// Protocol is the protocol of the payload (ProtoGRE, ProtoIPIP, …).
func (b IPv4) Protocol() uint8 { return b[IPv4Protocol] }

// Checksum is the header checksum as stored.
func (b IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[IPv4Checksum:]) }

// Src is the source address as its four bytes.
func (b IPv4) Src() [4]byte { return [4]byte(b[IPv4Src : IPv4Src+4]) }

// Dst is the destination address as its four bytes.
func (b IPv4) Dst() [4]byte { return [4]byte(b[IPv4Dst : IPv4Dst+4]) }

// SrcAddr is the source address; netip.Addr is a value: nothing is allocated.
func (b IPv4) SrcAddr() netip.Addr { return netip.AddrFrom4(b.Src()) }

// DstAddr is the destination address.
func (b IPv4) DstAddr() netip.Addr { return netip.AddrFrom4(b.Dst()) }

// Payload is what follows the header (options skipped), up to the end of
// the slice: trailing bytes past TotalLen included.
func (b IPv4) Payload() []byte { return b[b.HeaderLen():] }

// SetTOS writes the type of service byte; the checksum is not updated.
func (b IPv4) SetTOS(v uint8) { b[IPv4TOS] = v }

// SetTotalLen writes the total length; the checksum is not updated.
func (b IPv4) SetTotalLen(n int) { binary.BigEndian.PutUint16(b[IPv4TotalLen:], uint16(n)) }

// SetID writes the identification; the checksum is not updated.
func (b IPv4) SetID(v uint16) { binary.BigEndian.PutUint16(b[IPv4ID:], v) }

// SetFlagsFrag writes the flags and fragment offset word; the checksum is not updated.
func (b IPv4) SetFlagsFrag(v uint16) { binary.BigEndian.PutUint16(b[IPv4FlagsFrag:], v) }

// SetTTL writes the time to live; the checksum is not updated.
func (b IPv4) SetTTL(v uint8) { b[IPv4TTL] = v }

// SetChecksum writes the header checksum field.
func (b IPv4) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[IPv4Checksum:], v) }

// Encode writes a 20-byte header without options from f, checksum
// included. b must hold IPv4MinLen bytes.
func (b IPv4) Encode(f *IPv4Fields) {
	b[IPv4VersIHL] = 0x45
	b[IPv4TOS] = f.TOS
	binary.BigEndian.PutUint16(b[IPv4TotalLen:], f.TotalLen)
	binary.BigEndian.PutUint16(b[IPv4ID:], f.ID)
	binary.BigEndian.PutUint16(b[IPv4FlagsFrag:], f.FlagsFrag)
	b[IPv4TTL] = f.TTL
	b[IPv4Protocol] = f.Protocol
	s, d := f.Src.As4(), f.Dst.As4()
	copy(b[IPv4Src:], s[:])
	copy(b[IPv4Dst:], d[:])
	b[:IPv4MinLen].UpdateChecksum()
}

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

// Addrs is the source and destination address, contiguous, as PseudoSum
// takes them; it aliases b.
func (b IPv4) Addrs() []byte { return b[IPv4Src : IPv4Dst+4] }
