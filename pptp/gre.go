package pptp

import (
	"encoding/binary"
	"errors"
)

// The enhanced GRE header (RFC 2637 §4.1), GRE version 1:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|C|R|K|S|s|Recur|A| Flags | Ver |         Protocol Type         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|    Key (HW) Payload Length    |       Key (LW) Call ID        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  Sequence Number (Optional)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               Acknowledgment Number (Optional)                |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// C, R, s and Recur are 0, K is 1; S is set when there is a payload, A
// when an acknowledgement number follows.
const (
	greFlagK   = 0x2000
	greFlagS   = 0x1000
	greFlagA   = 0x0080
	greMustBe0 = 0xCF78 // C, R, s, Recur and the reserved flags
	greVersion = 0x0007
	// GREProtoPPP is the protocol type of PPP in enhanced GRE.
	GREProtoPPP = 0x880B
	// GREMaxLen is the longest enhanced GRE header (with S and A).
	GREMaxLen = 16
)

// Errors of ParseGRE, used as drop reasons.
var (
	ErrGREShort   = errors.New("gre1-short")   // shorter than its header or its payload length
	ErrGREVersion = errors.New("gre1-version") // not GRE version 1
	ErrGREProto   = errors.New("gre1-proto")   // protocol type not PPP
	ErrGREFlags   = errors.New("gre1-flags")   // K clear, or C, R, s, Recur set
)

// GRE is a parsed enhanced GRE packet. Payload aliases the input.
type GRE struct {
	CallID  uint16
	Seq     uint32
	HasSeq  bool
	Ack     uint32
	HasAck  bool
	Payload []byte
}

// ParseGRE parses the enhanced GRE packet b (starting at its GRE
// header). It never panics and never allocates. The payload is cut to
// the key's payload length; bytes beyond it are padding.
func ParseGRE(b []byte) (GRE, error) {
	var g GRE
	if len(b) < 4 {
		return g, ErrGREShort
	}
	flags := binary.BigEndian.Uint16(b)
	if flags&greVersion != 1 {
		return g, ErrGREVersion
	}
	if binary.BigEndian.Uint16(b[2:]) != GREProtoPPP {
		return g, ErrGREProto
	}
	if flags&greFlagK == 0 || flags&greMustBe0 != 0 {
		return g, ErrGREFlags
	}
	if len(b) < 8 {
		return g, ErrGREShort
	}
	n := int(binary.BigEndian.Uint16(b[4:]))
	g.CallID = binary.BigEndian.Uint16(b[6:])
	off := 8
	if flags&greFlagS != 0 {
		if len(b) < off+4 {
			return g, ErrGREShort
		}
		g.Seq, g.HasSeq = binary.BigEndian.Uint32(b[off:]), true
		off += 4
	}
	if flags&greFlagA != 0 {
		if len(b) < off+4 {
			return g, ErrGREShort
		}
		g.Ack, g.HasAck = binary.BigEndian.Uint32(b[off:]), true
		off += 4
	}
	if len(b)-off < n {
		return g, ErrGREShort
	}
	g.Payload = b[off : off+n]
	return g, nil
}

// GRELen is the header length with a sequence and/or acknowledgement
// number.
func GRELen(hasSeq, hasAck bool) int {
	n := 8
	if hasSeq {
		n += 4
	}
	if hasAck {
		n += 4
	}
	return n
}

// PutGRE writes the header of g (all but its Payload, whose length it
// takes) at the start of b, which must hold GRELen bytes, and returns the
// header's length.
func PutGRE(b []byte, g *GRE, payloadLen int) int {
	flags := uint16(greFlagK | 1)
	if g.HasSeq {
		flags |= greFlagS
	}
	if g.HasAck {
		flags |= greFlagA
	}
	binary.BigEndian.PutUint16(b, flags)
	binary.BigEndian.PutUint16(b[2:], GREProtoPPP)
	binary.BigEndian.PutUint16(b[4:], uint16(payloadLen))
	binary.BigEndian.PutUint16(b[6:], g.CallID)
	off := 8
	if g.HasSeq {
		binary.BigEndian.PutUint32(b[off:], g.Seq)
		off += 4
	}
	if g.HasAck {
		binary.BigEndian.PutUint32(b[off:], g.Ack)
		off += 4
	}
	return off
}

// SeqAfter reports whether sequence number a comes after b (RFC 1982
// serial arithmetic): a packet whose number is not after the last one
// received is a duplicate or out of order, and RFC 2637 §4.4 lets the
// receiver drop it.
func SeqAfter(a, b uint32) bool { return int32(a-b) > 0 }
