package header

import "testing"

func TestGREOffsets(t *testing.T) {
	for _, c := range []struct {
		flags         uint16
		len, key, seq int
	}{
		{0, 4, 4, 4},
		{GREFlagCsum, 8, 8, 8},
		{GREFlagKey, 8, 4, 8},
		{GREFlagSeq, 8, 4, 4},
		{GREFlagCsum | GREFlagKey, 12, 8, 12},
		{GREFlagCsum | GREFlagSeq, 12, 8, 8},
		{GREFlagKey | GREFlagSeq, 12, 4, 8},
		{GREFlagCsum | GREFlagKey | GREFlagSeq, 16, 8, 12},
		{GREFlagRoute | GREReserved0 | GREVersion, 4, 4, 4}, // other bits add nothing
	} {
		g := GRE{byte(c.flags >> 8), byte(c.flags), 0x08, 0x00}
		if GRELen(c.flags) != c.len || g.Len() != c.len || g.KeyOffset() != c.key || g.SeqOffset() != c.seq {
			t.Errorf("flags %#04x: len %d key %d seq %d, want %d %d %d", c.flags, g.Len(), g.KeyOffset(), g.SeqOffset(), c.len, c.key, c.seq)
		}
	}
	if GREReserved0Drop&^GREReserved0 != 0 || GREReserved0Drop != 0x0c00 {
		t.Errorf("GREReserved0Drop %#04x must be bits 4 and 5, inside Reserved0", GREReserved0Drop)
	}
	g := GRE{0xb0, 0x00, 0x86, 0xdd, 0xaa, 0xbb, 0, 0, 0, 0, 0, 42, 0, 0, 1, 0}
	if g.Version() != 0 || g.Protocol() != EtherTypeIPv6 || g.Checksum() != 0xaabb || g.Key() != 42 || g.Seq() != 256 {
		t.Errorf("GRE accessors: version %d protocol %#x checksum %#x key %d seq %d", g.Version(), g.Protocol(), g.Checksum(), g.Key(), g.Seq())
	}
}

func TestIPv4View(t *testing.T) {
	b := IPv4{
		0x46, 0xb9, 0x00, 0x20, // version 4, IHL 6, TOS 0xb9, total length 32
		0x12, 0x34, 0x20, 0x03, // ID, MF, offset 3*8
		0x40, 0x2f, 0x00, 0x00, // TTL 64, GRE, checksum
		192, 0, 2, 1, 192, 0, 2, 2,
		0x01, 0x01, 0x01, 0x00, // options: NOP NOP NOP EOL
		0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0,
	}
	b.UpdateChecksum()
	if !b.IsValid() || !b.ChecksumValid() {
		t.Fatal("header not valid after UpdateChecksum")
	}
	if b.Version() != 4 || b.HeaderLen() != 24 || b.TOS() != 0xb9 || b.TotalLen() != 32 || b.ID() != 0x1234 ||
		b.DF() || !b.MoreFragments() || b.FragmentOffset() != 24 || !b.IsFragment() || b.TTL() != 64 ||
		b.Protocol() != ProtoGRE || b.Src() != [4]byte{192, 0, 2, 1} || b.Dst() != [4]byte{192, 0, 2, 2} ||
		len(b.Payload()) != 8 {
		t.Errorf("IPv4 accessors disagree with the bytes")
	}
	b[IPv4TTL]--
	if b.ChecksumValid() {
		t.Error("checksum still valid after a change")
	}
	for _, bad := range []IPv4{nil, b[:19], {0x65, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, b[:23], {0x44, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if bad.IsValid() {
			t.Errorf("IsValid(% x) = true", []byte(bad))
		}
	}
}

func TestIPv6View(t *testing.T) {
	b := IPv6(make([]byte, 48))
	b[0], b[1] = 0x6b, 0x90 // traffic class 0xb9
	b[5], b[6], b[7] = 8, 58, 33
	if !b.IsValid() || b.TrafficClass() != 0xb9 || b.PayloadLen() != 8 || b.NextHeader() != 58 || b.HopLimit() != 33 {
		t.Errorf("IPv6 accessors disagree with the bytes")
	}
	if IPv6(b[:39]).IsValid() {
		t.Error("39 bytes is not an IPv6 header")
	}
}

func TestInnerVersionEtherType(t *testing.T) {
	for first, want := range map[byte]uint16{0x45: EtherTypeIPv4, 0x4f: EtherTypeIPv4, 0x60: EtherTypeIPv6, 0x00: 0, 0x55: 0, 0xff: 0} {
		if got := InnerVersionEtherType(first); got != want {
			t.Errorf("InnerVersionEtherType(%#x) = %#x, want %#x", first, got, want)
		}
	}
}
