package header

import "testing"

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
