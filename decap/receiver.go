package decap

import "github.com/gretun/gretun/header"

// Policy is a tunnel's receive configuration.
type Policy struct {
	Key             uint32 // ikey, when HasKey
	HasKey          bool
	RequireChecksum bool // icsum
	RequireSequence bool // iseq
}

// Receiver applies one tunnel's Policy to parsed packets and keeps its
// sequence-number state. It is not safe for concurrent use: the receiving
// goroutine owns it.
type Receiver struct {
	Policy
	nextSeq uint32
	seqSeen bool
}

// NewReceiver returns a Receiver for p.
func NewReceiver(p Policy) *Receiver { return &Receiver{Policy: p} }

// Accept applies the tunnel's policy to a packet Parse accepted, as Linux's
// ip_tunnel_rcv does: the key must match (a keyless tunnel takes no keyed
// packets), icsum requires a checksum, and iseq requires a sequence number
// that is not older than the last accepted one (RFC 2890 section 2.2, serial
// arithmetic; duplicates are old).
func (r *Receiver) Accept(p *Packet) Reason {
	if p.Proto != header.ProtoGRE {
		return OK
	}
	if p.HasKey() != r.HasKey || r.HasKey && p.Key != r.Key {
		return KeyMismatch
	}
	if r.RequireChecksum && p.GREFlags&header.GREFlagCsum == 0 {
		return ChecksumMissing
	}
	if r.RequireSequence && p.Type != header.EtherTypeKeepalive {
		if p.GREFlags&header.GREFlagSeq == 0 {
			return SeqMissing
		}
		if r.seqSeen && int32(p.Seq-r.nextSeq) < 0 {
			return OutOfSequence
		}
		r.nextSeq, r.seqSeen = p.Seq+1, true
	}
	return OK
}
