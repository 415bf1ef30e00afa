package header

import "testing"

// TestIPv6EncapLimit finds the encapsulation limit where Linux's
// ip6_tnl_parse_tlv_enc_lim does, and nowhere else.
func TestIPv6EncapLimit(t *testing.T) {
	fixed := func(next uint8, rest ...byte) []byte {
		p := make([]byte, IPv6HeaderLen, IPv6HeaderLen+len(rest))
		p[0], p[IPv6NextHeader] = 0x60, next
		return append(p, rest...)
	}
	limit := func(next, l uint8) []byte { return []byte{next, 0, IPv6OptEncapLimit, 1, l, IPv6OptPadN, 1, 0} }
	hbh := []byte{IPv6DestOpts, 0, IPv6OptPadN, 4, 0, 0, 0, 0}
	for _, tc := range []struct {
		name  string
		pkt   []byte
		limit uint8
		at    int
		found bool
	}{
		{"as Linux sends it", fixed(IPv6DestOpts, limit(ProtoGRE, 4)...), 4, 44, true},
		{"limit 0", fixed(IPv6DestOpts, limit(ProtoIPv6, 0)...), 0, 44, true},
		{"after hop-by-hop", fixed(IPv6HopByHop, append(hbh, limit(ProtoGRE, 7)...)...), 7, 52, true},
		{"after Pad1", fixed(IPv6DestOpts, ProtoGRE, 0, IPv6OptPad1, IPv6OptEncapLimit, 1, 9, IPv6OptPad1, IPv6OptPad1), 9, 45, true},
		{"after a first fragment", fixed(IPv6Fragment, append([]byte{IPv6DestOpts, 0, 0, 1, 0, 0, 0, 1}, limit(ProtoGRE, 3)...)...), 3, 52, true},
		{"behind a later fragment", fixed(IPv6Fragment, append([]byte{IPv6DestOpts, 0, 0, 8, 0, 0, 0, 1}, limit(ProtoGRE, 3)...)...), 0, 0, false},
		{"none: plain UDP", fixed(ProtoUDP, make([]byte, 8)...), 0, 0, false},
		{"none: only padding", fixed(IPv6DestOpts, ProtoGRE, 0, IPv6OptPadN, 4, 0, 0, 0, 0), 0, 0, false},
		{"header runs past the packet", fixed(IPv6DestOpts, ProtoGRE, 1, IPv6OptEncapLimit, 1, 4, 1, 1, 0), 0, 0, false},
		{"option runs past its header", fixed(IPv6DestOpts, ProtoGRE, 0, IPv6OptPadN, 3, 0, 0, 0, IPv6OptEncapLimit), 0, 0, false},
		{"truncated fixed header", []byte{0x60}, 0, 0, false},
	} {
		l, at, found := IPv6EncapLimit(tc.pkt)
		if l != tc.limit || at != tc.at || found != tc.found {
			t.Errorf("%s: IPv6EncapLimit = %d, %d, %v; want %d, %d, %v", tc.name, l, at, found, tc.limit, tc.at, tc.found)
		}
		if found && tc.pkt[at] != l {
			t.Errorf("%s: offset %d does not hold the limit", tc.name, at)
		}
	}
}

// FuzzIPv6EncapLimit: on any bytes IPv6EncapLimit does not panic, and a
// limit it finds is the byte at the offset it gives.
func FuzzIPv6EncapLimit(f *testing.F) {
	f.Add([]byte{0x60, 0, 0, 0, 0, 8, IPv6DestOpts, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		ProtoGRE, 0, IPv6OptEncapLimit, 1, 4, IPv6OptPadN, 1, 0})
	f.Add(append(make([]byte, 40), IPv6DestOpts, 0, IPv6OptPad1, IPv6OptEncapLimit, 1, 0, 0, 0))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) > IPv6NextHeader {
			pkt[0] = 0x60
		}
		l, at, found := IPv6EncapLimit(pkt)
		if found && (at < IPv6HeaderLen || at >= len(pkt) || pkt[at] != l) {
			t.Fatalf("limit %d at %d in a %d-byte packet", l, at, len(pkt))
		}
	})
}
