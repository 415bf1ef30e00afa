package decap_test

import (
	"testing"

	"github.com/gretun/gretun/decap"
)

// acceptCases: a Receiver with policy sees the packets in order; want is
// the reason for the last one (every earlier one must be accepted).
var acceptCases = []struct {
	name   string
	policy decap.Policy
	seqs   []uint32 // sequence numbers of packets before the last one
	pkt    []byte
	want   decap.Reason
}{
	{name: "keyless tunnel, keyless packet", pkt: build(47, greHdr(0, 0x0800, 0, 0), in4), want: decap.OK},
	{name: "keyed packet to a keyless tunnel", pkt: build(47, greHdr(0x2000, 0x0800, 42, 0), in4), want: decap.KeyMismatch},
	{name: "keyed packet with key 0 to a keyless tunnel", pkt: build(47, greHdr(0x2000, 0x0800, 0, 0), in4), want: decap.KeyMismatch},
	{name: "keyless packet to a keyed tunnel", policy: decap.Policy{HasKey: true, Key: 42}, pkt: build(47, greHdr(0, 0x0800, 0, 0), in4), want: decap.KeyMismatch},
	{name: "keyless packet to a tunnel with key 0", policy: decap.Policy{HasKey: true, Key: 0}, pkt: build(47, greHdr(0, 0x0800, 0, 0), in4), want: decap.KeyMismatch},
	{name: "wrong key", policy: decap.Policy{HasKey: true, Key: 42}, pkt: build(47, greHdr(0x2000, 0x0800, 43, 0), in4), want: decap.KeyMismatch},
	{name: "right key", policy: decap.Policy{HasKey: true, Key: 42}, pkt: build(47, greHdr(0x2000, 0x0800, 42, 0), in4), want: decap.OK},
	{name: "keepalive with the wrong key", policy: decap.Policy{HasKey: true, Key: 42}, pkt: build(47, greHdr(0x2000, 0, 1, 0)), want: decap.KeyMismatch},
	{name: "icsum, no checksum", policy: decap.Policy{RequireChecksum: true}, pkt: build(47, greHdr(0, 0x0800, 0, 0), in4), want: decap.ChecksumMissing},
	{name: "icsum, checksum present", policy: decap.Policy{RequireChecksum: true}, pkt: build(47, greHdr(0x8000, 0x0800, 0, 0), in4), want: decap.OK},
	{name: "checksum present, not required", pkt: build(47, greHdr(0x8000, 0x0800, 0, 0), in4), want: decap.OK},
	{name: "iseq, no sequence number", policy: decap.Policy{RequireSequence: true}, pkt: build(47, greHdr(0, 0x0800, 0, 0), in4), want: decap.SeqMissing},
	{name: "iseq, keepalive without a sequence number", policy: decap.Policy{RequireSequence: true}, pkt: build(47, greHdr(0, 0, 0, 0)), want: decap.OK},
	{name: "sequence number present, not required", pkt: build(47, greHdr(0x1000, 0x0800, 0, 5), in4), want: decap.OK},
	{name: "first packet, sequence 0", policy: decap.Policy{RequireSequence: true}, pkt: build(47, greHdr(0x1000, 0x0800, 0, 0), in4), want: decap.OK},
	{name: "first packet, sequence 0x80000000", policy: decap.Policy{RequireSequence: true}, pkt: build(47, greHdr(0x1000, 0x0800, 0, 0x80000000), in4), want: decap.OK},
	{name: "first packet, sequence 0xffffffff", policy: decap.Policy{RequireSequence: true}, pkt: build(47, greHdr(0x1000, 0x0800, 0, 0xffffffff), in4), want: decap.OK},
	{name: "in order", policy: decap.Policy{RequireSequence: true}, seqs: []uint32{0, 1, 2}, pkt: build(47, greHdr(0x1000, 0x0800, 0, 3), in4), want: decap.OK},
	{name: "a gap is fine", policy: decap.Policy{RequireSequence: true}, seqs: []uint32{0, 1}, pkt: build(47, greHdr(0x1000, 0x0800, 0, 1000), in4), want: decap.OK},
	{name: "duplicate", policy: decap.Policy{RequireSequence: true}, seqs: []uint32{0, 1, 2}, pkt: build(47, greHdr(0x1000, 0x0800, 0, 2), in4), want: decap.OutOfSequence},
	{name: "older", policy: decap.Policy{RequireSequence: true}, seqs: []uint32{5, 9}, pkt: build(47, greHdr(0x1000, 0x0800, 0, 7), in4), want: decap.OutOfSequence},
	{name: "wraparound 0xffffffff then 0", policy: decap.Policy{RequireSequence: true}, seqs: []uint32{0xfffffffe, 0xffffffff}, pkt: build(47, greHdr(0x1000, 0x0800, 0, 0), in4), want: decap.OK},
	{name: "wraparound, old packet from before the wrap", policy: decap.Policy{RequireSequence: true}, seqs: []uint32{0xffffffff, 0, 1}, pkt: build(47, greHdr(0x1000, 0x0800, 0, 0xfffffffe), in4), want: decap.OutOfSequence},
	{name: "wraparound, duplicate 0 after the wrap", policy: decap.Policy{RequireSequence: true}, seqs: []uint32{0xffffffff, 0}, pkt: build(47, greHdr(0x1000, 0x0800, 0, 0), in4), want: decap.OutOfSequence},
	// RFC 1982: s2 is newer than s1 when s2-s1 is below 2^31.
	{name: "serial: 2^31-1 ahead is newer", policy: decap.Policy{RequireSequence: true}, seqs: []uint32{10}, pkt: build(47, greHdr(0x1000, 0x0800, 0, 10+1+0x7ffffffe), in4), want: decap.OK},
	{name: "serial: 2^31 ahead counts as older", policy: decap.Policy{RequireSequence: true}, seqs: []uint32{10}, pkt: build(47, greHdr(0x1000, 0x0800, 0, 11+0x80000000), in4), want: decap.OutOfSequence},
	{name: "key checked before sequence", policy: decap.Policy{HasKey: true, Key: 1, RequireSequence: true}, pkt: build(47, greHdr(0x3000, 0x0800, 2, 0), in4), want: decap.KeyMismatch},
	{name: "ipip ignores gre policy", policy: decap.Policy{HasKey: true, Key: 1, RequireChecksum: true, RequireSequence: true}, pkt: build(4, in4), want: decap.OK},
}

func TestAccept(t *testing.T) {
	for _, c := range acceptCases {
		t.Run(c.name, func(t *testing.T) {
			r := decap.NewReceiver(c.policy)
			var p decap.Packet
			for _, s := range c.seqs {
				flags := uint16(0x1000)
				if c.policy.HasKey {
					flags |= 0x2000
				}
				if got := decap.Parse(build(47, greHdr(flags, 0x0800, c.policy.Key, s), in4), &p); got != decap.OK {
					t.Fatalf("Parse of packet %d: %v", s, got)
				}
				if got := r.Accept(&p); got != decap.OK {
					t.Fatalf("packet with sequence %d: %v, want ok", s, got)
				}
			}
			if got := decap.Parse(c.pkt, &p); got != decap.OK {
				t.Fatalf("Parse: %v", got)
			}
			if got := r.Accept(&p); got != c.want {
				t.Errorf("Accept = %v, want %v", got, c.want)
			}
		})
	}
}

// TestAcceptDropKeepsState: a dropped packet does not move the window.
func TestAcceptDropKeepsState(t *testing.T) {
	r := decap.NewReceiver(decap.Policy{RequireSequence: true})
	var p decap.Packet
	for _, c := range []struct {
		seq  uint32
		want decap.Reason
	}{{100, decap.OK}, {50, decap.OutOfSequence}, {100, decap.OutOfSequence}, {101, decap.OK}, {101, decap.OutOfSequence}, {102, decap.OK}} {
		decap.Parse(build(47, greHdr(0x1000, 0x0800, 0, c.seq), in4), &p)
		if got := r.Accept(&p); got != c.want {
			t.Errorf("sequence %d: %v, want %v", c.seq, got, c.want)
		}
	}
}

// TestReceiverContinue: a Receiver for a changed policy that still
// requires sequence numbers expects what the old one expected, also after
// two changes without a packet in between; a fresh one takes anything
// first.
func TestReceiverContinue(t *testing.T) {
	var p decap.Packet
	accept := func(r *decap.Receiver, seq uint32) decap.Reason {
		t.Helper()
		flags := uint16(0x1000)
		if r.HasKey {
			flags |= 0x2000
		}
		if got := decap.Parse(build(47, greHdr(flags, 0x0800, r.Key, seq), in4), &p); got != decap.OK {
			t.Fatalf("Parse: %v", got)
		}
		return r.Accept(&p)
	}
	old := decap.NewReceiver(decap.Policy{RequireSequence: true})
	for _, s := range []uint32{7, 100} {
		if got := accept(old, s); got != decap.OK {
			t.Fatalf("sequence %d: %v", s, got)
		}
	}
	r := decap.NewReceiver(decap.Policy{RequireSequence: true, RequireChecksum: false, HasKey: true, Key: 9})
	r.Continue(old)
	if got := accept(r, 99); got != decap.OutOfSequence {
		t.Errorf("an older number after Continue: %v, want out-of-sequence", got)
	}
	if got := accept(r, 101); got != decap.OK {
		t.Errorf("the next number after Continue: %v", got)
	}
	// Two changes with no packet in between.
	mid := decap.NewReceiver(decap.Policy{RequireSequence: true, RequireChecksum: true})
	mid.Continue(r)
	last := decap.NewReceiver(decap.Policy{RequireSequence: true})
	last.Continue(mid)
	if got := accept(last, 101); got != decap.OutOfSequence {
		t.Errorf("a number already taken, two changes later: %v, want out-of-sequence", got)
	}
	if got := accept(decap.NewReceiver(decap.Policy{RequireSequence: true}), 5); got != decap.OK {
		t.Errorf("a fresh receiver refused its first packet: %v", got)
	}
}
