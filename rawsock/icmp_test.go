package rawsock

import (
	"bytes"
	"encoding/binary"
	"github.com/gretun/gretun/header"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fragNeeded is a Fragmentation Needed message as a Linux router sends it
// about a GRE packet from 192.0.2.1 to 198.51.100.2 (quote cut short here).
var fragNeeded = []byte{
	3, 4, // type Destination Unreachable, code Fragmentation Needed
	0, 0, // checksum, filled in by withChecksum
	0, 0, // unused
	0x05, 0x78, // next-hop MTU 1400
	// quoted IPv4 header
	0x45, 0x00, 0x05, 0xc0, // version 4, IHL 5, TOS 0, total length 1472
	0x00, 0x01, 0x40, 0x00, // ID 1, DF
	0x40, 47, 0x00, 0x00, // TTL 64, protocol GRE, header checksum (unchecked)
	192, 0, 2, 1, // source
	198, 51, 100, 2, // destination
	// quoted GRE header with key
	0x20, 0x00, 0x08, 0x00, // K bit, protocol 0x0800
	0x00, 0x00, 0x00, 42, // key 42
}

func withChecksum(m []byte) []byte {
	m = bytes.Clone(m)
	binary.BigEndian.PutUint16(m[2:], 0)
	binary.BigEndian.PutUint16(m[2:], header.Checksum(m))
	return m
}

func TestParseTooBig(t *testing.T) {
	good := withChecksum(fragNeeded)
	mod := func(f func(m []byte) []byte) []byte { return withChecksum(f(bytes.Clone(fragNeeded))) }
	tests := []struct {
		name string
		msg  []byte
		ok   bool
		want TooBig
	}{
		{"frag needed about GRE", good, true, TooBig{
			Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("198.51.100.2"),
			Proto: ProtoGRE, GREFlags: 0x2000, GREType: 0x0800, Key: 42, MTU: 1400, Quote: good[8:],
		}},
		{"frag needed about IPIP, header only quoted", withChecksum(func() []byte {
			m := bytes.Clone(fragNeeded[:8+20])
			m[8+9] = ProtoIPIP
			return m
		}()), true, TooBig{
			Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("198.51.100.2"),
			Proto: ProtoIPIP, MTU: 1400,
		}},
		{"frag needed about IPv6 in IPv4 (sit)", withChecksum(func() []byte {
			m := bytes.Clone(fragNeeded[:8+20+8])
			m[8+9] = ProtoIPv6
			return m
		}()), true, TooBig{
			Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("198.51.100.2"),
			Proto: ProtoIPv6, MTU: 1400,
		}},
		{"MTU 68, the IPv4 minimum", mod(func(m []byte) []byte { m[6], m[7] = 0, 68; return m }), true, TooBig{
			Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("198.51.100.2"),
			Proto: ProtoGRE, GREFlags: 0x2000, GREType: 0x0800, Key: 42, MTU: 68,
		}},
		{"MTU 67, below any IPv4 link", mod(func(m []byte) []byte { m[6], m[7] = 0, 67; return m }), false, TooBig{}},
		{"MTU 1", mod(func(m []byte) []byte { m[6], m[7] = 0, 1; return m }), false, TooBig{}},
		{"MTU 0 (pre-RFC 1191)", mod(func(m []byte) []byte { m[6], m[7] = 0, 0; return m }), false, TooBig{}},
		// Routers that quote 8 bytes past the IP header: the key is there
		// unless a checksum field comes first (the kernel's ipgre_err).
		{"8-byte quote, checksum and no key", withChecksum(func() []byte {
			m := bytes.Clone(fragNeeded)
			m[28] = 0x80 // C, no K
			return m
		}()), true, TooBig{
			Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("198.51.100.2"),
			Proto: ProtoGRE, GREFlags: 0x8000, GREType: 0x0800, MTU: 1400,
		}},
		{"8-byte quote, checksum before the key", mod(func(m []byte) []byte { m[28] = 0xa0; return m }), false, TooBig{}},
		{"12-byte quote, checksum and key", withChecksum(append(func() []byte {
			m := bytes.Clone(fragNeeded[:8+24])
			m[28] = 0xb0 // C, K, S
			return m
		}(), 0xab, 0xcd, 0, 0, 0, 0, 0, 7)), true, TooBig{
			Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("198.51.100.2"),
			Proto: ProtoGRE, GREFlags: 0xb000, GREType: 0x0800, Key: 7, MTU: 1400,
		}},
		{"K set, key not quoted", withChecksum(fragNeeded[:8+24]), false, TooBig{}},
		{"GRE header not quoted", withChecksum(fragNeeded[:8+22]), false, TooBig{}},
		{"bad checksum", func() []byte { m := bytes.Clone(good); m[2] ^= 1; return m }(), false, TooBig{}},
		{"port unreachable", mod(func(m []byte) []byte { m[1] = 3; return m }), false, TooBig{}},
		{"time exceeded", mod(func(m []byte) []byte { m[0], m[1] = 11, 0; return m }), false, TooBig{}},
		{"quotes UDP", mod(func(m []byte) []byte { m[8+9] = 17; return m }), false, TooBig{}},
		{"quotes IPv6", mod(func(m []byte) []byte { m[8] = 0x60; return m }), false, TooBig{}},
		{"IHL below 5", mod(func(m []byte) []byte { m[8] = 0x44; return m }), false, TooBig{}},
		{"IHL beyond quote", mod(func(m []byte) []byte { m[8] = 0x4f; return m }), false, TooBig{}},
		{"quote shorter than a header", withChecksum(fragNeeded[:8+19]), false, TooBig{}},
		{"empty", nil, false, TooBig{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseTooBig(tt.msg)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if tt.want.Quote == nil && ok {
				tt.want.Quote = tt.msg[8:]
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseTooBig(f *testing.F) {
	f.Add(withChecksum(fragNeeded))
	f.Add([]byte{3, 4})
	f.Fuzz(func(t *testing.T, msg []byte) {
		tb, ok := ParseTooBig(msg)
		if !ok {
			return
		}
		if len(tb.Quote) < 20 || &tb.Quote[len(tb.Quote)-1] != &msg[len(msg)-1] {
			t.Fatalf("Quote is not the tail of the message")
		}
		if tb.Proto != ProtoGRE && tb.Proto != ProtoIPIP && tb.Proto != ProtoIPv6 {
			t.Fatalf("Proto = %d", tb.Proto)
		}
		if tb.MTU < 68 {
			t.Fatalf("MTU %d accepted", tb.MTU)
		}
		if tb.GREFlags&header.GREFlagKey == 0 && tb.Key != 0 {
			t.Fatalf("key %d without K", tb.Key)
		}
		if header.Checksum(msg) != 0 {
			t.Fatalf("accepted a bad checksum")
		}
	})
}
