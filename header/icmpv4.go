package header

import "encoding/binary"

// ICMPv4 message, RFC 792, with the Next-Hop MTU that RFC 1191 §4 puts in
// the unused word of a Destination Unreachable, Fragmentation Needed and
// DF Set (type 3, code 4):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           unused = 0          |         Next-Hop MTU          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      Internet Header + 64 bits of Original Data Datagram      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The checksum covers the whole message, quote included, and no
// pseudo-header.
const (
	ICMPv4Type       = 0
	ICMPv4Code       = 1
	ICMPv4Checksum   = 2
	ICMPv4Unused     = 4 // first half of the second word: zero in Fragmentation Needed
	ICMPv4NextHopMTU = 6
	ICMPv4Quote      = 8 // the offending IPv4 header and at least 8 bytes of its payload
	ICMPv4MinLen     = 8 // the header without a quote

	// ICMPv4DstUnreachable is the Destination Unreachable type (RFC 792).
	ICMPv4DstUnreachable = 3
	// ICMPv4FragNeeded is the Fragmentation Needed and DF Set code of
	// Destination Unreachable (RFC 792, RFC 1191 §4).
	ICMPv4FragNeeded = 4
)

// ICMPv4 is a view of an ICMPv4 message. Accessors need len(b) >=
// ICMPv4MinLen.
type ICMPv4 []byte

// IsValid reports whether b holds at least the 8-byte ICMP header.
func (b ICMPv4) IsValid() bool { return len(b) >= ICMPv4MinLen }

// Type is the message type (3: Destination Unreachable).
func (b ICMPv4) Type() uint8 { return b[ICMPv4Type] }

// Code qualifies the type (with type 3, 4: Fragmentation Needed).
func (b ICMPv4) Code() uint8 { return b[ICMPv4Code] }

// Checksum is the checksum field as it stands.
func (b ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[ICMPv4Checksum:]) }

// ChecksumValid reports whether the checksum over the whole of b verifies.
func (b ICMPv4) ChecksumValid() bool { return Checksum(b) == 0 }

// NextHopMTU is the MTU a router reported in a Fragmentation Needed
// message; 0 from routers older than RFC 1191.
func (b ICMPv4) NextHopMTU() uint16 { return binary.BigEndian.Uint16(b[ICMPv4NextHopMTU:]) }

// Quote is what an error message carries after its header: the start of
// the packet that caused it, from its IPv4 header on. It aliases b.
func (b ICMPv4) Quote() []byte { return b[ICMPv4Quote:] }

// EncodeFragNeeded writes the header of a Fragmentation Needed message
// reporting mtu and its checksum, which covers all of b: the quote must
// already be in place at b[ICMPv4Quote:].
func (b ICMPv4) EncodeFragNeeded(mtu uint16) {
	_ = b[ICMPv4MinLen-1]
	b[ICMPv4Type], b[ICMPv4Code] = ICMPv4DstUnreachable, ICMPv4FragNeeded
	binary.BigEndian.PutUint16(b[ICMPv4Checksum:], 0)
	binary.BigEndian.PutUint16(b[ICMPv4Unused:], 0)
	binary.BigEndian.PutUint16(b[ICMPv4NextHopMTU:], mtu)
	binary.BigEndian.PutUint16(b[ICMPv4Checksum:], Checksum(b))
}
