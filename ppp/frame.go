// Package ppp negotiates a PPP link (RFC 1661) as a client of a PPTP
// server: LCP (MRU, magic number, authentication protocol), PAP (RFC 1334)
// or CHAP with MD5 (RFC 1994) authentication, and IPCP (RFC 1332: the
// address the server assigns, RFC 1877 DNS servers). It carries no
// compression or encryption (no CCP, no MPPE) and no IPv6 (IPV6CP is
// rejected). Framing is PPTP's: no HDLC, no FCS; every frame starts with
// the address and control bytes FF 03.
package ppp

import (
	"encoding/binary"
	"errors"
)

// PPP protocol numbers.
const (
	ProtoIP   = 0x0021
	ProtoIPCP = 0x8021
	ProtoLCP  = 0xC021
	ProtoPAP  = 0xC023
	ProtoCHAP = 0xC223
)

// Control protocol codes (RFC 1661 §5).
const (
	ConfReq    = 1
	ConfAck    = 2
	ConfNak    = 3
	ConfRej    = 4
	TermReq    = 5
	TermAck    = 6
	CodeRej    = 7
	ProtoRej   = 8
	EchoReq    = 9
	EchoRep    = 10
	DiscardReq = 11
)

// Errors of Decode and of the packet parsers, used as drop reasons.
var (
	ErrShort   = errors.New("ppp-short")   // no protocol field, or a packet shorter than its header
	ErrLength  = errors.New("ppp-length")  // a length field beyond the frame
	ErrOptions = errors.New("ppp-options") // an option list that does not add up
)

// HeaderLen is the length of the frame header Encode writes: FF 03 and a
// two-byte protocol.
const HeaderLen = 4

// Decode splits a PPP frame into its protocol and information field. The
// address and control bytes may be missing (ACFC) and the protocol may
// be one byte (PFC): gretun accepts both, whatever it negotiated.
func Decode(b []byte) (proto uint16, info []byte, err error) {
	if len(b) >= 2 && b[0] == 0xFF && b[1] == 0x03 {
		b = b[2:]
	}
	if len(b) < 1 {
		return 0, nil, ErrShort
	}
	if b[0]&1 == 1 { // a compressed protocol field: one odd byte
		return uint16(b[0]), b[1:], nil
	}
	if len(b) < 2 {
		return 0, nil, ErrShort
	}
	return binary.BigEndian.Uint16(b), b[2:], nil
}

// PutHeader writes FF 03 and proto into b[:HeaderLen].
func PutHeader(b []byte, proto uint16) {
	b[0], b[1] = 0xFF, 0x03
	binary.BigEndian.PutUint16(b[2:], proto)
}

// Packet is a control packet: LCP, IPCP, PAP and CHAP share its header
// (code, identifier, length).
type Packet struct {
	Code, ID uint8
	Data     []byte
}

// ParsePacket reads the packet at the start of info; bytes beyond its
// length are padding.
func ParsePacket(info []byte) (Packet, error) {
	if len(info) < 4 {
		return Packet{}, ErrShort
	}
	n := int(binary.BigEndian.Uint16(info[2:]))
	if n < 4 || n > len(info) {
		return Packet{}, ErrLength
	}
	return Packet{Code: info[0], ID: info[1], Data: info[4:n]}, nil
}

// frame returns a whole PPP frame carrying p.
func frame(proto uint16, p Packet) []byte {
	b := make([]byte, HeaderLen+4+len(p.Data))
	PutHeader(b, proto)
	b[4], b[5] = p.Code, p.ID
	binary.BigEndian.PutUint16(b[6:], uint16(4+len(p.Data)))
	copy(b[8:], p.Data)
	return b
}

// Option is one configuration option (type, and data after the length).
type Option struct {
	Type uint8
	Data []byte
}

// ParseOptions splits a Configure packet's data into options.
func ParseOptions(b []byte) ([]Option, error) {
	var opts []Option
	for len(b) > 0 {
		if len(b) < 2 || b[1] < 2 || int(b[1]) > len(b) {
			return nil, ErrOptions
		}
		opts = append(opts, Option{Type: b[0], Data: b[2:b[1]]})
		b = b[b[1]:]
	}
	return opts, nil
}

// appendOption appends o in wire form.
func appendOption(b []byte, o Option) []byte {
	return append(append(b, o.Type, uint8(2+len(o.Data))), o.Data...)
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
