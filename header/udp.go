package header

import "encoding/binary"

// UDP header, RFC 768:
//
//	 0      7 8     15 16    23 24    31
//	+--------+--------+--------+--------+
//	|     Source      |   Destination   |
//	|      Port       |      Port       |
//	+--------+--------+--------+--------+
//	|                 |                 |
//	|     Length      |    Checksum     |
//	+--------+--------+--------+--------+
//
// Length counts header and payload. The checksum covers a pseudo-header
// of the IP addresses, protocol and length (PseudoSum), the header and the
// payload; 0 means none was computed (allowed over IPv4, and over IPv6
// for tunnels under RFC 6935 and RFC 6936, as RFC 8086 section 3.2 notes).
const (
	UDPSrcPort  = 0
	UDPDstPort  = 2
	UDPLength   = 4
	UDPChecksum = 6
	UDPLen      = 8 // header length

	// UDPPortGRE is the destination port of GRE-in-UDP (RFC 8086 section 3).
	UDPPortGRE = 4754
)

// UDPFields is what UDP.Encode writes.
type UDPFields struct {
	SrcPort, DstPort uint16
	Length           uint16 // header and payload
	Checksum         uint16
}

// UDP is a view of a UDP header followed by its payload.
type UDP []byte

// IsValid reports whether b holds a header whose length fits in b.
func (b UDP) IsValid() bool {
	return len(b) >= UDPLen && b.Length() >= UDPLen && b.Length() <= len(b)
}

// SrcPort is the source port.
func (b UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(b[UDPSrcPort:]) }

// DstPort is the destination port.
func (b UDP) DstPort() uint16 { return binary.BigEndian.Uint16(b[UDPDstPort:]) }

// Length is the length of header and payload the header announces.
func (b UDP) Length() int { return int(binary.BigEndian.Uint16(b[UDPLength:])) }

// Checksum is the checksum field as stored; 0 when none was computed.
func (b UDP) Checksum() uint16 { return binary.BigEndian.Uint16(b[UDPChecksum:]) }

// Payload is what follows the header, up to Length (b must be valid).
func (b UDP) Payload() []byte { return b[UDPLen:b.Length()] }

// SetLength writes the length field.
func (b UDP) SetLength(n int) { binary.BigEndian.PutUint16(b[UDPLength:], uint16(n)) }

// SetChecksum writes the checksum field.
func (b UDP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[UDPChecksum:], v) }

// Encode writes the header from f. b must hold UDPLen bytes.
func (b UDP) Encode(f *UDPFields) {
	binary.BigEndian.PutUint16(b[UDPSrcPort:], f.SrcPort)
	binary.BigEndian.PutUint16(b[UDPDstPort:], f.DstPort)
	binary.BigEndian.PutUint16(b[UDPLength:], f.Length)
	binary.BigEndian.PutUint16(b[UDPChecksum:], f.Checksum)
}

// ComputeChecksum returns the checksum of the datagram b[:Length()] with
// the checksum field taken as zero, given the running sum of its
// pseudo-header (PseudoSum over the addresses, ProtoUDP and Length). A
// result of 0 is sent as 0xffff (RFC 768): 0 means "no checksum".
func (b UDP) ComputeChecksum(pseudo uint64) uint16 {
	d := b[:b.Length()]
	sum := Sum(d[:UDPChecksum], pseudo)
	c := Fold(Sum(d[UDPChecksum+2:], sum))
	if c == 0 {
		c = 0xffff
	}
	return c
}
