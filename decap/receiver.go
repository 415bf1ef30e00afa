package decap

import (
	"sync/atomic"

	"github.com/gretun/gretun/header"
)

// Policy is a tunnel's receive configuration.
type Policy struct {
	Key             uint32 // ikey, when HasKey
	HasKey          bool
	RequireChecksum bool // icsum
	RequireSequence bool // iseq
}

// Receiver applies one tunnel's Policy to parsed packets and keeps its
// sequence-number state. One receiving goroutine calls Accept; the state is
// atomic only so that Continue may read it from another goroutine.
type Receiver struct {
	Policy
	// next is the next expected sequence number with seqSeen above it, 0
	// before the first numbered packet.
	next atomic.Uint64
}

const seqSeen = 1 << 32

// NewReceiver returns a Receiver for p.
func NewReceiver(p Policy) *Receiver { return &Receiver{Policy: p} }

// Continue makes r expect the sequence numbers old expects, for a tunnel
// whose receive policy changed but still requires them (iseq): Linux keeps
// i_seqno across `ip tunnel change`, so an old or replayed packet is not
// let in by a change. old may still be in use by the receiving goroutine
// until r replaces it; a packet it accepts meanwhile only makes r a little
// more lenient, never drops one.
func (r *Receiver) Continue(old *Receiver) { r.next.Store(old.next.Load()) }

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
		if n := r.next.Load(); n&seqSeen != 0 && int32(p.Seq-uint32(n)) < 0 {
			return OutOfSequence
		}
		r.next.Store(seqSeen | uint64(p.Seq+1))
	}
	return OK
}
