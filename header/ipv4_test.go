package header

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/gretun/gretun/internal/refsum"
)

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

func TestIPv4Encode(t *testing.T) {
	b := make(IPv4, IPv4MinLen)
	b.Encode(&IPv4Fields{TOS: 0xb9, TotalLen: 60, ID: 0x1234, FlagsFrag: IPv4FlagDF, TTL: 255, Protocol: ProtoUDP,
		Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2")})
	want := IPv4{
		0x45, 0xb9, 0x00, 0x3c, // version 4, IHL 5, TOS 0xb9, total length 60
		0x12, 0x34, 0x40, 0x00, // ID, DF
		0xff, 0x11, 0x00, 0x00, // TTL 255, UDP, checksum (checked below)
		192, 0, 2, 1, 192, 0, 2, 2,
	}
	want.SetChecksum(refsum.RFC1071(want))
	if !bytes.Equal(b, want) || !b.ChecksumValid() {
		t.Errorf("Encode = % x, want % x", []byte(b), []byte(want))
	}
	if b.SrcAddr() != netip.MustParseAddr("192.0.2.1") || b.DstAddr() != netip.MustParseAddr("192.0.2.2") {
		t.Errorf("SrcAddr %v DstAddr %v", b.SrcAddr(), b.DstAddr())
	}
}
