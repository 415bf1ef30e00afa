package header

import "encoding/binary"

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
	GRECsum      = 4 // checksum, when GREFlagCsum is set
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
	EtherTypeTEB       = 0x6558 // Transparent Ethernet Bridging: an Ethernet frame (gretap)
	EtherTypeKeepalive = 0x0000 // Cisco keepalive reply: GRE with protocol type 0
)

// GREFields is what GRE.Encode writes. The checksum is left zero: it covers
// the payload, which the caller owns (see Checksum).
type GREFields struct {
	Csum, HasKey, HasSeq bool
	Protocol             uint16 // EtherType of the payload
	Key, Seq             uint32
}

// GRE is a view of a GRE header followed by its payload.
type GRE []byte

// Flags is the first word: the C, K and S flags, reserved bits and version.
func (g GRE) Flags() uint16 { return binary.BigEndian.Uint16(g[GREFlags:]) }

// Version is the version field: 0 for RFC 2784, GREVersionPPTP for RFC 2637.
func (g GRE) Version() uint16 { return g.Flags() & GREVersion }

// Protocol is the EtherType of the payload (EtherTypeIPv4, …).
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

// KeyOffset is where the key is (or would be) for the view's flags.
func (g GRE) KeyOffset() int {
	if g.Flags()&GREFlagCsum != 0 {
		return 8
	}
	return 4
}

// SeqOffset is where the sequence number is (or would be) for the view's flags.
func (g GRE) SeqOffset() int {
	off := g.KeyOffset()
	if g.Flags()&GREFlagKey != 0 {
		off += 4
	}
	return off
}

// Checksum is the checksum field; meaningful when GREFlagCsum is set.
func (g GRE) Checksum() uint16 { return binary.BigEndian.Uint16(g[GRECsum:]) }

// Key is the key; meaningful when GREFlagKey is set.
func (g GRE) Key() uint32 { return binary.BigEndian.Uint32(g[g.KeyOffset():]) }

// Seq is the sequence number; meaningful when GREFlagSeq is set.
func (g GRE) Seq() uint32 { return binary.BigEndian.Uint32(g[g.SeqOffset():]) }

// Encode writes the header f describes, version 0, with a zero checksum
// field, and returns its length. g must hold GRELen of its flags.
func (g GRE) Encode(f *GREFields) int {
	flags := GREFlagsFor(f.Csum, f.HasKey, f.HasSeq)
	binary.BigEndian.PutUint32(g, uint32(flags)<<16|uint32(f.Protocol))
	off := GREMinLen
	if f.Csum {
		binary.BigEndian.PutUint32(g[off:], 0)
		off += 4
	}
	if f.HasKey {
		binary.BigEndian.PutUint32(g[off:], f.Key)
		off += 4
	}
	if f.HasSeq {
		binary.BigEndian.PutUint32(g[off:], f.Seq)
		off += 4
	}
	return off
}

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
