package rawsock

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/gretun/gretun/header"
)

// ptb6 is a Packet Too Big reporting mtu about an ip6gre packet as Linux
// sends it (encapsulation limit option, GRE with key 7), quoting quote
// bytes after the fixed header.
func ptb6(mtu uint32, quote int) []byte {
	m := []byte{header.ICMPv6PacketTooBig, 0, 0, 0}
	m = binary.BigEndian.AppendUint32(m, mtu)
	ip := make([]byte, 40)
	header.IPv6(ip).Encode(&header.IPv6Fields{PayloadLen: 1460, NextHeader: header.IPv6DestOpts, HopLimit: 64,
		Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8::2")})
	rest := []byte{header.ProtoGRE, 0, 4, 1, 4, 1, 1, 0, 0x20, 0x00, 0x08, 0x00, 0, 0, 0, 7, 0x45, 0}
	return append(append(m, ip...), rest[:quote]...)
}

// TestParseTooBig6 reads a Packet Too Big about an ip6gre packet, and
// refuses one below 1280, one not quoting the key, and other messages.
func TestParseTooBig6(t *testing.T) {
	tb, ok := ParseTooBig6(ptb6(1400, 18))
	if !ok || tb.MTU != 1400 || tb.Proto != ProtoGRE || tb.Key != 7 || tb.GREFlags != header.GREFlagKey || tb.GREType != header.EtherTypeIPv4 ||
		tb.Src != netip.MustParseAddr("2001:db8::1") || tb.Dst != netip.MustParseAddr("2001:db8::2") {
		t.Errorf("ParseTooBig6 = %+v, %v", tb, ok)
	}
	for name, m := range map[string][]byte{
		"mtu 1279":        ptb6(1279, 18),
		"key not quoted":  ptb6(1400, 14),
		"options cut off": ptb6(1400, 6),
		"not too big":     append([]byte{1, 4}, ptb6(1400, 18)[2:]...),
		"no quote":        ptb6(1400, 0)[:20],
	} {
		if tb, ok := ParseTooBig6(m); ok {
			t.Errorf("%s: accepted as %+v", name, tb)
		}
	}
}

// FuzzParseTooBig6: any bytes parse without panic, and what is accepted
// names a tunnel protocol and an MTU of at least 1280, its quote inside
// the message.
func FuzzParseTooBig6(f *testing.F) {
	f.Add(ptb6(1400, 18))
	f.Add(ptb6(1280, 8))
	f.Fuzz(func(t *testing.T, m []byte) {
		tb, ok := ParseTooBig6(m)
		if !ok {
			return
		}
		if tb.MTU < 1280 || (tb.Proto != ProtoGRE && tb.Proto != ProtoIPv6 && tb.Proto != ProtoIPIP) || !bytes.Contains(m, tb.Quote) {
			t.Fatalf("accepted %+v", tb)
		}
	})
}
