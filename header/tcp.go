package header

import "encoding/binary"

// TCP header, RFC 9293 §3.1:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Sequence Number                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Acknowledgment Number                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Data |       |C|E|U|A|P|R|S|F|                               |
//	| Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//	|       |       |R|E|G|K|H|T|N|N|                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Checksum            |         Urgent Pointer        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                           [Options]                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The checksum covers the IP pseudo-header (see PseudoSum), the header
// and the data.
const (
	TCPSrcPort    = 0
	TCPDstPort    = 2
	TCPSeqNum     = 4
	TCPAckNum     = 8
	TCPDataOffset = 12 // high nibble: header length in 32-bit words
	TCPFlags      = 13
	TCPWindow     = 14
	TCPChecksum   = 16
	TCPUrgent     = 18
	TCPMinLen     = 20 // header without options
	TCPMaxLen     = 60

	// Control bits in the TCPFlags byte.
	TCPFlagFIN = 0x01
	TCPFlagSYN = 0x02
	TCPFlagRST = 0x04
	TCPFlagPSH = 0x08
	TCPFlagACK = 0x10
	TCPFlagURG = 0x20
	TCPFlagECE = 0x40
	TCPFlagCWR = 0x80

	// Option kinds (RFC 9293 §3.2). End and NOP are one byte; every other
	// option is kind, length (counting kind and length) and data.
	TCPOptionEnd = 0 // End of Option List
	TCPOptionNOP = 1 // No-Operation
	TCPOptionMSS = 2 // Maximum Segment Size: 2 bytes of data (RFC 6691)
	// TCPOptionMSSLen is the length byte of a well-formed MSS option.
	TCPOptionMSSLen = 4
)

// TCP is a view of a TCP header followed by its data. Accessors of the
// fixed header need len(b) >= TCPMinLen; Options and Payload need IsValid.
type TCP []byte

// IsValid reports whether b holds the fixed header and the options its
// Data Offset announces, and that offset is at least 5 words.
func (b TCP) IsValid() bool {
	return len(b) >= TCPMinLen && b.HeaderLen() >= TCPMinLen && b.HeaderLen() <= len(b)
}

// SrcPort is the source port.
func (b TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(b[TCPSrcPort:]) }

// DstPort is the destination port.
func (b TCP) DstPort() uint16 { return binary.BigEndian.Uint16(b[TCPDstPort:]) }

// SeqNum is the sequence number of the first data byte (of the SYN, when
// SYN is set).
func (b TCP) SeqNum() uint32 { return binary.BigEndian.Uint32(b[TCPSeqNum:]) }

// SetSeqNum writes the sequence number; the checksum is not updated.
func (b TCP) SetSeqNum(v uint32) { binary.BigEndian.PutUint32(b[TCPSeqNum:], v) }

// AckNum is the acknowledgment number (meaningful with ACK set).
func (b TCP) AckNum() uint32 { return binary.BigEndian.Uint32(b[TCPAckNum:]) }

// HeaderLen is the header length in bytes, options included, from the
// Data Offset field. Check it against len(b) (IsValid) before slicing.
func (b TCP) HeaderLen() int { return int(b[TCPDataOffset]>>4) * 4 }

// Flags is the byte of control bits (TCPFlagFIN...TCPFlagCWR).
func (b TCP) Flags() uint8 { return b[TCPFlags] }

// SetFlags writes the control bits; the checksum is not updated.
func (b TCP) SetFlags(v uint8) { b[TCPFlags] = v }

// Window is the receive window, unscaled.
func (b TCP) Window() uint16 { return binary.BigEndian.Uint16(b[TCPWindow:]) }

// Checksum is the checksum field as it stands.
func (b TCP) Checksum() uint16 { return binary.BigEndian.Uint16(b[TCPChecksum:]) }

// SetChecksum writes the checksum field.
func (b TCP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[TCPChecksum:], v) }

// Options is the options part of the header; it aliases b.
func (b TCP) Options() []byte { return b[TCPMinLen:b.HeaderLen()] }

// Payload is the data after the header; it aliases b.
func (b TCP) Payload() []byte { return b[b.HeaderLen():] }

// NextTCPOption reads the option at opts[i:] (opts as Options returns
// it): its kind, its data without the kind and length bytes (nil for NOP),
// and where the next option starts (only meaningful with ok). ok is false
// at the End of Option List, at the end of opts, and at an option whose
// length is below 2 or runs past opts: the walk stops there, as a receiver
// stops trusting the rest. It never allocates; data aliases opts.
//
//	for i := 0; ; {
//		kind, data, next, ok := header.NextTCPOption(opts, i)
//		if !ok {
//			break
//		}
//		// use kind and data
//		i = next
//	}
func NextTCPOption(opts []byte, i int) (kind uint8, data []byte, next int, ok bool) {
	if uint(i) >= uint(len(opts)) {
		return 0, nil, i, false
	}
	if kind = opts[i]; kind <= TCPOptionNOP { // End or NOP: one byte
		return kind, nil, i + 1, kind == TCPOptionNOP
	}
	n := 0 // the length byte, when there is one
	if i+1 < len(opts) {
		n = int(opts[i+1])
	}
	if n < 2 || i+n > len(opts) {
		return kind, nil, i, false
	}
	return kind, opts[i+2 : i+n], i + n, true
}

// MSSOffset finds the first well-formed Maximum Segment Size option and
// returns the offset in b of its 2-byte value; ok is false when b is not a
// valid header (see IsValid) or its options hold none before they end or
// stop making sense (see NextTCPOption). An MSS option of another length
// than 4 is skipped.
func (b TCP) MSSOffset() (off int, ok bool) {
	if len(b) < TCPMinLen {
		return 0, false
	}
	hlen := b.HeaderLen()
	if hlen < TCPMinLen || hlen > len(b) {
		return 0, false
	}
	opts := b[TCPMinLen:hlen]
	for i := 0; ; {
		kind, data, next, ok := NextTCPOption(opts, i)
		if !ok {
			return 0, false
		}
		if kind == TCPOptionMSS && len(data)+2 == TCPOptionMSSLen {
			return TCPMinLen + i + 2, true
		}
		i = next
	}
}
