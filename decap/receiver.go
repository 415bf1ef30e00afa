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
	// prev, set by Continue, holds the sequence state to take over on the
	// first numbered packet.
	prev *Receiver
}

// NewReceiver returns a Receiver for p.
func NewReceiver(p Policy) *Receiver { return &Receiver{Policy: p} }

// Continue makes r expect the sequence numbers old expects, for a tunnel
// whose receive policy changed but still requires them (iseq): Linux keeps
// i_seqno across `ip tunnel change`, so a change lets no old or replayed
// packet in. Call it before r is handed to the receiving goroutine, which
// may still be using old: r takes old's state over on its first numbered
// packet, in that goroutine, so the two never race and nothing old
// accepted in between is missed.
func (r *Receiver) Continue(old *Receiver) { r.prev = old }

// takeOver adopts the sequence state of the newest receiver before r that
// saw packets (one that has a prev of its own never did).
func (r *Receiver) takeOver() {
	o := r.prev
	for o.prev != nil {
		o = o.prev
	}
	r.nextSeq, r.seqSeen, r.prev = o.nextSeq, o.seqSeen, nil
}

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
		if r.prev != nil {
			r.takeOver()
		}
		if r.seqSeen && int32(p.Seq-r.nextSeq) < 0 {
			return OutOfSequence
		}
		r.nextSeq, r.seqSeen = p.Seq+1, true
	}
	return OK
}
