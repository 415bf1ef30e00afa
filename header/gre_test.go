package header

import (
	"bytes"
	"testing"
)

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

func TestInnerVersionEtherType(t *testing.T) {
	for first, want := range map[byte]uint16{0x45: EtherTypeIPv4, 0x4f: EtherTypeIPv4, 0x60: EtherTypeIPv6, 0x00: 0, 0x55: 0, 0xff: 0} {
		if got := InnerVersionEtherType(first); got != want {
			t.Errorf("InnerVersionEtherType(%#x) = %#x, want %#x", first, got, want)
		}
	}
}

func TestGREEncode(t *testing.T) {
	for flags := range 8 {
		f := GREFields{Csum: flags&1 != 0, HasKey: flags&2 != 0, HasSeq: flags&4 != 0, Protocol: EtherTypeTEB, Key: 0xdeadbeef, Seq: 77}
		g := GRE(bytes.Repeat([]byte{0xee}, GREMaxLen))
		n := g.Encode(&f)
		wantFlags := GREFlagsFor(f.Csum, f.HasKey, f.HasSeq)
		if n != GRELen(wantFlags) || g.Flags() != wantFlags || g.Len() != n || g.Version() != 0 || g.Protocol() != EtherTypeTEB {
			t.Errorf("%+v: length %d flags %#04x protocol %#04x", f, n, g.Flags(), g.Protocol())
		}
		if f.Csum && g.Checksum() != 0 || f.HasKey && g.Key() != f.Key || f.HasSeq && g.Seq() != f.Seq {
			t.Errorf("%+v: optional fields % x", f, []byte(g[:n]))
		}
		if !bytes.Equal(g[n:], bytes.Repeat([]byte{0xee}, GREMaxLen-n)) {
			t.Errorf("%+v: wrote past its length", f)
		}
	}
	g := make(GRE, GREMaxLen)
	g.Encode(&GREFields{Csum: true, HasKey: true, HasSeq: true, Protocol: EtherTypeIPv6, Key: 42, Seq: 256})
	want := []byte{
		0xb0, 0x00, 0x86, 0xdd, // C, K, S, version 0; protocol IPv6
		0x00, 0x00, 0x00, 0x00, // checksum (left to the caller), reserved1
		0x00, 0x00, 0x00, 0x2a, // key 42
		0x00, 0x00, 0x01, 0x00, // sequence number 256
	}
	if !bytes.Equal(g, want) {
		t.Errorf("Encode = % x, want % x", []byte(g), want)
	}
}
