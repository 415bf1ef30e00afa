package header

import "encoding/binary"

// Ethernet II header (IEEE 802.3 §3.2, RFC 894), without preamble, VLAN
// tag or frame check sequence:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination MAC address                    |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                      Source MAC address                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           EtherType           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The EtherType values are those GRE carries too (EtherTypeIPv4, ...).
const (
	EthernetDst       = 0
	EthernetSrc       = 6
	EthernetType      = 12
	EthernetHeaderLen = 14
	EthernetAddrLen   = 6
)

// Ethernet is a view of an Ethernet II header followed by its payload.
// Accessors need len(b) >= EthernetHeaderLen.
type Ethernet []byte

// IsValid reports whether b holds a whole header.
func (b Ethernet) IsValid() bool { return len(b) >= EthernetHeaderLen }

// Dst is the destination MAC address; it aliases b.
func (b Ethernet) Dst() []byte { return b[EthernetDst : EthernetDst+EthernetAddrLen] }

// Src is the source MAC address; it aliases b.
func (b Ethernet) Src() []byte { return b[EthernetSrc : EthernetSrc+EthernetAddrLen] }

// EtherType says what the payload is (EtherTypeIPv4, EtherTypeIPv6).
func (b Ethernet) EtherType() uint16 { return binary.BigEndian.Uint16(b[EthernetType:]) }

// Payload is what follows the header; it aliases b.
func (b Ethernet) Payload() []byte { return b[EthernetHeaderLen:] }

// VLANTagLen is an 802.1Q (or 802.1ad) tag: the tag's EtherType and its
// tag control information, between the addresses and the EtherType.
const VLANTagLen = 4

// FramedIPAt is the length of the Ethernet header and of up to two VLAN
// tags (802.1Q, 802.1ad) in front of the IPv4 or IPv6 packet frame
// carries, 0 when it carries none.
func FramedIPAt(frame []byte) int {
	n := EthernetHeaderLen
	for range 3 {
		if len(frame) < n {
			return 0
		}
		switch binary.BigEndian.Uint16(frame[n-2:]) {
		case EtherTypeIPv4, EtherTypeIPv6:
			return n
		case 0x8100, 0x88a8: // 802.1Q, 802.1ad: a tag, then the type
			n += VLANTagLen
		default:
			return 0
		}
	}
	return 0
}

// Encode writes the header: dst and src are 6-byte MAC addresses (a
// net.HardwareAddr of an Ethernet device).
func (b Ethernet) Encode(dst, src []byte, etherType uint16) {
	_ = b[EthernetHeaderLen-1]
	copy(b[EthernetDst:EthernetDst+EthernetAddrLen], dst)
	copy(b[EthernetSrc:EthernetSrc+EthernetAddrLen], src)
	binary.BigEndian.PutUint16(b[EthernetType:], etherType)
}

// Htons is v in network byte order as a uint16 in memory holds it: what
// the protocol field of a packet socket's sockaddr_ll (an EtherType) wants,
// as C's htons gives it on any machine.
func Htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
