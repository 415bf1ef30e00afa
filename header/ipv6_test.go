package header

import (
	"bytes"
	"net/netip"
	"testing"
)

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

func TestIPv6Encode(t *testing.T) {
	b := make(IPv6, IPv6HeaderLen)
	b.Encode(&IPv6Fields{TrafficClass: 0xb9, FlowLabel: 0x12345, PayloadLen: 68, NextHeader: ProtoGRE, HopLimit: 64,
		Src: netip.MustParseAddr("2001:db8::a"), Dst: netip.MustParseAddr("2001:db8::b")})
	want := []byte{
		0x6b, 0x91, 0x23, 0x45, // version 6, traffic class 0xb9, flow label 0x12345
		0x00, 0x44, 0x2f, 0x40, // payload length 68, next header GRE, hop limit 64
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b,
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("Encode = % x, want % x", []byte(b), want)
	}
	if !b.IsValid() || b.TrafficClass() != 0xb9 || b.FlowLabel() != 0x12345 || b.PayloadLen() != 68 || b.NextHeader() != ProtoGRE ||
		b.HopLimit() != 64 || b.SrcAddr() != netip.MustParseAddr("2001:db8::a") || b.DstAddr() != netip.MustParseAddr("2001:db8::b") {
		t.Errorf("accessors disagree with Encode")
	}
	b.SetTrafficClass(0x03)
	b.SetPayloadLen(8)
	b.SetHopLimit(1)
	if b[0] != 0x60 || b[1] != 0x31 || b.FlowLabel() != 0x12345 || b.PayloadLen() != 8 || b.HopLimit() != 1 {
		t.Errorf("setters: % x", []byte(b[:8]))
	}
}

func TestIPv6Ext(t *testing.T) {
	dest := IPv6Ext{
		ProtoGRE, 1, // next header GRE, 16 bytes
		0x00,             // Pad1
		0x01, 0x02, 0, 0, // PadN of 2
		0x04, 0x01, 0x05, // tunnel encapsulation limit 5
		0x01, 0x04, 0, 0, 0, 0, // PadN of 4
	}
	if dest.NextHeader() != ProtoGRE || dest.Len(IPv6DestOpts) != 16 {
		t.Errorf("next header %d, length %d", dest.NextHeader(), dest.Len(IPv6DestOpts))
	}
	if l, has, ok := dest.Options(16); !ok || !has || l != 5 {
		t.Errorf("Options = %d, %v, %v, want limit 5", l, has, ok)
	}
	if _, _, ok := dest.Options(9); ok {
		t.Error("Options read an option running past the header")
	}
	if _, has, ok := (IPv6Ext{ProtoGRE, 0, 0x01, 0x04, 0, 0, 0, 0}).Options(8); has || !ok {
		t.Error("Options found a limit in padding")
	}
	// Unknown options: type 0x1e (action 00) is skipped, 0x5e (01), 0x9e
	// (10) and 0xde (11) say to discard the packet.
	for typ, want := range map[byte]bool{0x1e: true, 0x5e: false, 0x9e: false, 0xde: false} {
		if _, _, ok := (IPv6Ext{ProtoGRE, 0, typ, 0x02, 0, 0, 0x01, 0x00}).Options(8); ok != want {
			t.Errorf("unknown option %#x: ok %v, want %v", typ, ok, want)
		}
	}
	frag := IPv6Ext{ProtoGRE, 0xff, 0x05, 0x51, 0, 0, 0, 1} // reserved byte set: the length is 8 anyway
	if frag.Len(IPv6Fragment) != 8 || frag.FragmentOffset() != 0x0550 || !frag.MoreFragments() {
		t.Errorf("fragment: length %d offset %d more %v", frag.Len(IPv6Fragment), frag.FragmentOffset(), frag.MoreFragments())
	}
}
