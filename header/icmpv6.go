package header

import "encoding/binary"

// ICMPv6 message, RFC 4443 §2.1, as Packet Too Big (§3.2) fills it:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                             MTU                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    As much of invoking packet                 |
//	+               as possible without the ICMPv6 packet           +
//	|               exceeding the minimum IPv6 MTU                  |
//
// The checksum covers the IPv6 pseudo-header (RFC 8200 §8.1) and the
// whole message.
const (
	ICMPv6Type     = 0
	ICMPv6Code     = 1
	ICMPv6Checksum = 2
	ICMPv6MTU      = 4
	ICMPv6Quote    = 8 // the invoking packet, from its IPv6 header on
	ICMPv6MinLen   = 8 // the header without a quote

	// ICMPv6PacketTooBig is the Packet Too Big type (RFC 4443 §3.2).
	ICMPv6PacketTooBig = 2
	// ICMPv6ParamProblem with code ICMPv6ErroneousField points at the
	// header field that made a packet unusable (RFC 4443 section 3.4).
	ICMPv6ParamProblem   = 4
	ICMPv6ErroneousField = 0
	// ICMPv6ErrorLimit: types below it are errors, the others
	// informational messages (RFC 4443 §2.1).
	ICMPv6ErrorLimit = 128
)

// ICMPv6 is a view of an ICMPv6 message. Accessors need len(b) >=
// ICMPv6MinLen.
type ICMPv6 []byte

// IsValid reports whether b holds at least the 8-byte ICMPv6 header.
func (b ICMPv6) IsValid() bool { return len(b) >= ICMPv6MinLen }

// Type is the message type (2: Packet Too Big).
func (b ICMPv6) Type() uint8 { return b[ICMPv6Type] }

// Code qualifies the type (0 for Packet Too Big).
func (b ICMPv6) Code() uint8 { return b[ICMPv6Code] }

// IsError reports whether the message is an error message (RFC 4443 §2.1),
// which no ICMPv6 error may answer (§2.4(e)).
func (b ICMPv6) IsError() bool { return b.Type() < ICMPv6ErrorLimit }

// Checksum is the checksum field as it stands.
func (b ICMPv6) Checksum() uint16 { return binary.BigEndian.Uint16(b[ICMPv6Checksum:]) }

// MTU is the MTU a Packet Too Big reports.
func (b ICMPv6) MTU() uint32 { return binary.BigEndian.Uint32(b[ICMPv6MTU:]) }

// Quote is what an error message carries after its header: the start of
// the invoking packet. It aliases b.
func (b ICMPv6) Quote() []byte { return b[ICMPv6Quote:] }

// EncodePacketTooBig writes the header of a Packet Too Big reporting mtu
// and its checksum over the pseudo-header of addrs (source and destination
// addresses, contiguous, as in the IPv6 header) and all of b: the quote
// must already be in place at b[ICMPv6Quote:].
func (b ICMPv6) EncodePacketTooBig(mtu uint32, addrs []byte) {
	b.EncodeError(ICMPv6PacketTooBig, 0, mtu, addrs)
}

// EncodeError writes the header of an error message of type typ and code
// whose second word is value (an MTU, a Parameter Problem's pointer) and
// its checksum, as EncodePacketTooBig does.
func (b ICMPv6) EncodeError(typ, code uint8, value uint32, addrs []byte) {
	_ = b[ICMPv6MinLen-1]
	b[ICMPv6Type], b[ICMPv6Code] = typ, code
	binary.BigEndian.PutUint16(b[ICMPv6Checksum:], 0)
	binary.BigEndian.PutUint32(b[ICMPv6MTU:], value)
	binary.BigEndian.PutUint16(b[ICMPv6Checksum:], Fold(Sum(b, PseudoSum(addrs, ProtoICMPv6, len(b)))))
}
